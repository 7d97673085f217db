// The JobQueue contract suite: every JobQueue backend runs it (see job-queue.ts for the contract it checks).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isTributaryError } from "../../errors.js";
import type { JobLease, JobQueue, JobSpec, JobStatus, JsonValue } from "./job-queue.js";

/** Cases a backend may skip, each with the reason it gives. */
export interface JobQueueContractOptions {
  /** Two instances on one storage, a crashed taker, jobs surviving a close. */
  readonly skip?: Partial<Record<"restart", string>>;
}

/**
 * Makes a JobQueue whose state lives in `dir` (or, for a server backend, is keyed by it): two
 * instances made on one `dir` share their queues, like two worker processes.
 */
export type MakeJobQueue = (dir: string) => JobQueue | Promise<JobQueue>;

/** Lease long enough that it never ends during a case that does not mean it to. */
const LONG = 60_000;
/** Lease short enough for a case to watch it end. */
const SHORT = 300;
/** How long a case polls for something the contract says happens promptly, before it fails. */
const PATIENCE_MS = 20_000;

/**
 * Runs the JobQueue contract against one backend.
 * @example jobQueueContract("LocalJobQueue", () => new LocalJobQueue(), { skip: { restart: "…" } });
 */
export function jobQueueContract(
  name: string,
  makeQueue: MakeJobQueue,
  options: JobQueueContractOptions = {},
): void {
  const skip = options.skip ?? {};

  describe(`JobQueue contract: ${name}`, () => {
    // One instance serves every case that needs no second one; each case has its own queue name,
    // which also keeps cases apart on a server whose state outlives the folder.
    let root = "";
    let q: JobQueue;
    const extra = new Set<JobQueue>();
    before(async () => {
      root = mkdtempSync(join(tmpdir(), "trb-jobs-"));
      q = await makeQueue(join(root, "shared"));
    });
    after(async () => {
      for (const other of extra) await other.close();
      await q?.close();
      rmSync(root, { recursive: true, force: true });
    });

    /** Another instance on the folder `sub` of this run (the same `sub`: the same storage). */
    async function instance(sub: string): Promise<JobQueue> {
      const other = await makeQueue(join(root, sub));
      extra.add(other);
      return other;
    }

    test("enqueue, take, complete: payloads round-trip and each job is done once", async () => {
      const queue = uniqueName();
      const payloads: JsonValue[] = [
        { model: "orders_daily", day: "2024-05-01", n: 1.5, ok: true, none: null, list: [1, "2"] },
        { nested: { deeper: [{ a: -0.25 }, [], {}] } },
        'Zoë ✈ \u2028 "quoted" \\ back',
        42,
        [],
        null,
        { big: "x".repeat(100_000) },
      ];
      const specs = payloads.map((payload, i) => ({ key: `k${i}`, payload }));
      const enqueued = await q.enqueue(queue, specs);
      assert.equal(enqueued.length, specs.length);
      assert.ok(enqueued.every((e) => !e.duplicate));
      assert.equal(new Set(enqueued.map((e) => e.id)).size, specs.length, "ids are distinct");

      const pending = await q.status(queue, ["k0", "nope"]);
      assert.deepEqual([...pending.keys()], ["k0"], "keys without jobs are left out");
      assert.deepEqual(pick(pending.get("k0")), {
        id: enqueued[0]!.id,
        key: "k0",
        state: "pending",
        attempts: 0,
        maxAttempts: 3,
      });

      const before = Date.now();
      const leases = await q.take(queue, { max: 100, leaseMs: LONG });
      assert.equal(leases.length, specs.length);
      for (const lease of leases) {
        const i = Number(lease.key.slice(1));
        assert.deepEqual(lease.payload, payloads[i], `payload of ${lease.key}`);
        assert.equal(lease.id, enqueued[i]!.id);
        assert.equal(lease.queue, queue);
        assert.equal(lease.attempt, 1);
        assert.equal(lease.maxAttempts, 3);
        assert.equal(lease.leaseMs, LONG);
        assert.ok(lease.expiresAt >= before + LONG, "expiresAt is measured from before the take");
      }
      assert.equal((await q.status(queue, ["k1"])).get("k1")?.state, "active");
      assert.deepEqual(await q.take(queue, { max: 100, leaseMs: LONG }), [], "all are leased");

      for (const lease of leases) {
        assert.equal(await q.complete(lease, { rows: Number(lease.key.slice(1)) }), true);
      }
      assert.deepEqual(await q.take(queue, { max: 100, leaseMs: LONG }), [], "all are done");
      const done = await q.status(
        queue,
        specs.map((s) => s.key),
      );
      specs.forEach((s, i) =>
        assert.deepEqual(pick(done.get(s.key)), {
          id: enqueued[i]!.id,
          key: s.key,
          state: "completed",
          attempts: 1,
          maxAttempts: 3,
          result: { rows: i },
        }),
      );
      assert.equal(await q.complete(leases[0]!), false, "a finished job cannot complete again");
    });

    test("enqueue is idempotent by key among live jobs; a finished key can be enqueued again", async () => {
      const queue = uniqueName();
      const first = await q.enqueue(queue, [
        { key: "a", payload: 1 },
        { key: "b", payload: 2 },
      ]);
      const second = await q.enqueue(queue, [
        { key: "b", payload: 99 },
        { key: "c", payload: 3 },
        { key: "c", payload: 4 },
      ]);
      assert.deepEqual(second[0], { id: first[1]!.id, duplicate: true }, "pending b is kept");
      assert.equal(second[1]!.duplicate, false);
      assert.deepEqual(second[2], { id: second[1]!.id, duplicate: true }, "c once per call");

      const leases = await q.take(queue, { max: 10, leaseMs: LONG });
      assert.deepEqual(byKey(leases), { a: 1, b: 2, c: 3 }, "one job per key, first payload");
      const a = leases.find((l) => l.key === "a")!;
      assert.deepEqual(
        await q.enqueue(queue, [{ key: "a", payload: 5 }]),
        [{ id: first[0]!.id, duplicate: true }],
        "an active key is live too",
      );

      assert.equal(await q.complete(a), true);
      const rerun = await q.enqueue(queue, [{ key: "a", payload: 5 }]);
      assert.equal(rerun[0]!.duplicate, false, "a completed key is enqueued again");
      assert.notEqual(rerun[0]!.id, first[0]!.id);
      assert.deepEqual(pick((await q.status(queue, ["a"])).get("a")), {
        id: rerun[0]!.id,
        key: "a",
        state: "pending",
        attempts: 0,
        maxAttempts: 3,
      });
      assert.deepEqual(byKey(await q.take(queue, { max: 10, leaseMs: LONG })), { a: 5 });
    });

    test("a job goes to one taker at a time: 200 jobs, 4 concurrent takers, each done once", async () => {
      const queue = uniqueName();
      const total = 200;
      await q.enqueue(
        queue,
        Array.from({ length: total }, (_, i) => ({ key: `t${i}`, payload: { i } })),
      );
      const runs = new Map<string, number>();
      let completed = 0;
      const taker = async (): Promise<void> => {
        const deadline = Date.now() + PATIENCE_MS;
        while (completed < total) {
          assert.ok(Date.now() < deadline, `only ${completed} of ${total} jobs completed`);
          const leases = await q.take(queue, { max: 7, leaseMs: LONG, waitMs: 100 });
          for (const lease of leases) {
            runs.set(lease.key, (runs.get(lease.key) ?? 0) + 1);
            assert.equal(await q.complete(lease, lease.key), true);
            completed += 1;
          }
        }
      };
      await Promise.all([taker(), taker(), taker(), taker()]);
      assert.equal(runs.size, total);
      assert.deepEqual(
        [...runs].filter(([, n]) => n !== 1),
        [],
        "no job was delivered twice",
      );
      const status = await q.status(queue, [...runs.keys()]);
      assert.ok(
        [...status.values()].every((s) => s.state === "completed" && s.attempts === 1),
        "every job is completed after one attempt",
      );
    });

    test("a lease that ends unfinished frees the job for the next attempt; the stale lease is lost", async () => {
      const queue = uniqueName();
      const id = await enqueueOne(q, queue, { key: "x", payload: { p: 1 } });
      const [first] = await q.take(queue, { max: 1, leaseMs: SHORT });
      assert.equal(first?.attempt, 1);
      const second = await takeOne(q, queue);
      assert.equal(second.id, id);
      assert.equal(second.attempt, 2);
      assert.deepEqual(second.payload, { p: 1 });
      assert.equal(await q.heartbeat(first!), false, "the stale lease cannot be extended");
      assert.equal(await q.complete(first!), false, "the stale lease cannot complete");
      assert.equal(await q.fail(first!, "late"), false, "the stale lease cannot fail");
      assert.deepEqual(pick((await q.status(queue, ["x"])).get("x")), {
        id,
        key: "x",
        state: "active",
        attempts: 2,
        maxAttempts: 3,
        error: "lease expired",
      });
      assert.equal(await q.complete(second, "ok"), true);
      assert.deepEqual(pick((await q.status(queue, ["x"])).get("x")), {
        id,
        key: "x",
        state: "completed",
        attempts: 2,
        maxAttempts: 3,
        result: "ok",
      });
    });

    test("heartbeat keeps a lease well past its length", async () => {
      const queue = uniqueName();
      await q.enqueue(queue, [{ key: "h", payload: 1 }]);
      const [lease] = await q.take(queue, { max: 1, leaseMs: 500 });
      // Each round extends the lease to 500 ms, then lets another taker try for 150 ms: several
      // lease lengths in all, so a lease that was not extended would be freed and taken here.
      for (let round = 0; round < 15; round++) {
        assert.equal(await q.heartbeat(lease!), true, `heartbeat ${round}`);
        assert.deepEqual(
          await q.take(queue, { max: 1, leaseMs: LONG, waitMs: 150 }),
          [],
          `round ${round}: the job is still leased`,
        );
      }
      assert.equal(await q.heartbeat(lease!, LONG), true, "heartbeat takes a new length");
      assert.equal(await q.complete(lease!), true);
      assert.deepEqual(pick((await q.status(queue, ["h"])).get("h"))?.attempts, 1);
    });

    test("fail with attempts left makes the job pending again; a later attempt completes it", async () => {
      const queue = uniqueName();
      const id = await enqueueOne(q, queue, { key: "r", payload: "p" });
      const [first] = await q.take(queue, { max: 1, leaseMs: LONG });
      assert.equal(await q.fail(first!, "boom 1"), true);
      assert.deepEqual(pick((await q.status(queue, ["r"])).get("r")), {
        id,
        key: "r",
        state: "pending",
        attempts: 1,
        maxAttempts: 3,
        error: "boom 1",
      });
      const second = await takeOne(q, queue);
      assert.equal(second.id, id);
      assert.equal(second.attempt, 2);
      assert.equal(second.payload, "p");
      assert.equal(await q.complete(first!), false, "the failed delivery's lease is lost");
      assert.equal(await q.complete(second, ["done"]), true);
      assert.deepEqual(pick((await q.status(queue, ["r"])).get("r")), {
        id,
        key: "r",
        state: "completed",
        attempts: 2,
        maxAttempts: 3,
        result: ["done"],
      });
    });

    test("fail with retryAfterMs holds the job back until the delay is over", async () => {
      const queue = uniqueName();
      await q.enqueue(queue, [
        { key: "later", payload: 1 },
        { key: "soon", payload: 2 },
      ]);
      const leases = await q.take(queue, { max: 2, leaseMs: LONG });
      const later = leases.find((l) => l.key === "later")!;
      const soon = leases.find((l) => l.key === "soon")!;
      assert.equal(await q.fail(later, "wait a minute", { retryAfterMs: 60_000 }), true);
      assert.deepEqual(await q.take(queue, { max: 2, leaseMs: LONG }), [], "not yet due");
      assert.equal((await q.status(queue, ["later"])).get("later")?.state, "pending");
      assert.equal(await q.fail(soon, "shortly", { retryAfterMs: SHORT }), true);
      const again = await takeOne(q, queue);
      assert.equal(again.key, "soon");
      assert.equal(again.attempt, 2);
    });

    test("past maxAttempts the job fails for good with its error; its key can run again", async () => {
      const queue = uniqueName();
      const id = await enqueueOne(q, queue, { key: "f", payload: 0, maxAttempts: 2 });
      const [first] = await q.take(queue, { max: 1, leaseMs: LONG });
      assert.equal(first?.maxAttempts, 2);
      assert.equal(await q.fail(first!, "e1"), true);
      const second = await takeOne(q, queue);
      assert.equal(second.attempt, 2);
      assert.equal(await q.fail(second, "e2: the last word"), true);
      assert.deepEqual(pick((await q.status(queue, ["f"])).get("f")), {
        id,
        key: "f",
        state: "failed",
        attempts: 2,
        maxAttempts: 2,
        error: "e2: the last word",
      });
      assert.deepEqual(await q.take(queue, { max: 1, leaseMs: LONG }), [], "a failed job stays");
      assert.equal(await q.fail(second, "again"), false);
      assert.equal(await q.complete(second), false);
      const [rerun] = await q.enqueue(queue, [{ key: "f", payload: 1 }]);
      assert.equal(rerun?.duplicate, false, "a failed key is enqueued again");
      assert.notEqual(rerun?.id, id);
    });

    test("a lease that ends on the last attempt fails the job with 'lease expired'", async () => {
      const queue = uniqueName();
      await q.enqueue(queue, [{ key: "z", payload: 0, maxAttempts: 1 }]);
      const [lease] = await q.take(queue, { max: 1, leaseMs: SHORT });
      assert.ok(lease);
      const status = await poll(async () => {
        const s = (await q.status(queue, ["z"])).get("z");
        return s?.state === "failed" ? s : undefined;
      }, "the job to fail after its last lease ended");
      assert.deepEqual(pick(status), {
        id: lease.id,
        key: "z",
        state: "failed",
        attempts: 1,
        maxAttempts: 1,
        error: "lease expired",
      });
      assert.deepEqual(await q.take(queue, { max: 1, leaseMs: LONG }), []);
    });

    test("take waits for a job: returns once one is enqueued, [] at the timeout or on abort", async () => {
      const queue = uniqueName();
      const waiting = q.take(queue, { max: 5, leaseMs: LONG, waitMs: 120_000 });
      await sleep(100);
      await q.enqueue(queue, [{ key: "w", payload: 1 }]);
      const got = await within(waiting, "take to return the job enqueued while it waited");
      assert.deepEqual(byKey(got), { w: 1 });

      assert.deepEqual(await q.take(queue, { max: 1, leaseMs: LONG, waitMs: 200 }), []);

      const abort = new AbortController();
      const aborted = q.take(queue, {
        max: 1,
        leaseMs: LONG,
        waitMs: 120_000,
        signal: abort.signal,
      });
      await sleep(100);
      abort.abort();
      assert.deepEqual(await within(aborted, "an aborted take to return"), []);
    });

    test("bad arguments are RangeErrors and change nothing", async () => {
      const queue = uniqueName();
      const bad: [string, () => Promise<unknown>][] = [
        ["empty key", () => q.enqueue(queue, [{ key: "", payload: 1 }])],
        ["key with NUL", () => q.enqueue(queue, [{ key: "a\0b", payload: 1 }])],
        [
          "maxAttempts 0, after a good job",
          () =>
            q.enqueue(queue, [
              { key: "good", payload: 1 },
              { key: "bad", payload: 1, maxAttempts: 0 },
            ]),
        ],
        ["empty queue name", () => q.enqueue("", [{ key: "good", payload: 1 }])],
        ["max 0", () => q.take(queue, { max: 0, leaseMs: LONG })],
        ["leaseMs 0", () => q.take(queue, { max: 1, leaseMs: 0 })],
        ["negative waitMs", () => q.take(queue, { max: 1, leaseMs: LONG, waitMs: -1 })],
      ];
      for (const [what, call] of bad) await assert.rejects(call, RangeError, what);
      assert.deepEqual(await q.status(queue, ["good", "bad"]), new Map(), "nothing was enqueued");
    });

    test("a closed queue rejects every call with a clear error; a take waiting at close returns []", async () => {
      const closing = await instance("closing");
      const queue = uniqueName();
      await closing.enqueue(queue, [{ key: "c", payload: 1 }]);
      const [lease] = await closing.take(queue, { max: 1, leaseMs: LONG });
      const waiting = closing.take(uniqueName(), { max: 1, leaseMs: LONG, waitMs: 120_000 });
      await sleep(50);
      extra.delete(closing);
      await closing.close();
      assert.deepEqual(await within(waiting, "a waiting take to return at close"), []);
      await closing.close();
      const calls: [string, () => Promise<unknown>][] = [
        ["enqueue", () => closing.enqueue(queue, [{ key: "d", payload: 1 }])],
        ["take", () => closing.take(queue, { max: 1, leaseMs: LONG })],
        ["heartbeat", () => closing.heartbeat(lease!)],
        ["complete", () => closing.complete(lease!)],
        ["fail", () => closing.fail(lease!, "x")],
        ["status", () => closing.status(queue, ["c"])],
      ];
      for (const [what, call] of calls) {
        await assert.rejects(call, (e: unknown) => isTributaryError(e, "TRB_QUEUE_CLOSED"), what);
      }
    });

    test(
      "two instances on one storage: jobs are shared, a crashed taker's jobs return, enqueues outlive a close",
      { skip: skip.restart },
      async () => {
        const queue = uniqueName();
        const a = await instance("restart");
        const b = await instance("restart");
        const enqueued = await a.enqueue(queue, [
          { key: "p", payload: { n: 1 } },
          { key: "q", payload: { n: 2 } },
        ]);
        assert.deepEqual(
          await b.enqueue(queue, [{ key: "p", payload: {} }]),
          [{ id: enqueued[0]!.id, duplicate: true }],
          "keys are unique across instances",
        );
        assert.equal((await b.status(queue, ["q"])).get("q")?.state, "pending");

        // `a` takes both and then hangs (or crashes): it never finishes them.
        const lost = await a.take(queue, { max: 2, leaseMs: SHORT });
        assert.equal(lost.length, 2);
        const back = [await takeOne(b, queue), await takeOne(b, queue)];
        assert.deepEqual(byKey(back), { p: { n: 1 }, q: { n: 2 } });
        assert.ok(back.every((l) => l.attempt === 2));
        for (const lease of back) assert.equal(await b.complete(lease), true);
        for (const lease of lost) assert.equal(await a.complete(lease), false);

        // A take waiting on one instance sees a job enqueued through the other.
        const waiting = b.take(queue, { max: 1, leaseMs: LONG, waitMs: 120_000 });
        await sleep(100);
        await a.enqueue(queue, [{ key: "r", payload: "r" }]);
        assert.deepEqual(byKey(await within(waiting, "b's take to see a's job")), { r: "r" });

        // A job enqueued and a lease taken before a close are there after it.
        await a.enqueue(queue, [
          { key: "s", payload: "s" },
          { key: "u", payload: "u" },
        ]);
        const [held] = await a.take(queue, { max: 1, leaseMs: SHORT });
        extra.delete(a);
        await a.close();
        const c = await instance("restart");
        const later = [await takeOne(c, queue), await takeOne(c, queue)];
        assert.deepEqual(byKey(later), { s: "s", u: "u" });
        const redelivered = later.find((l) => l.key === held!.key)!;
        assert.equal(redelivered.attempt, 2, "the lease held at close ended and was redelivered");
      },
    );
  });
}

/** Enqueues one new job and returns its id. */
async function enqueueOne(q: JobQueue, queue: string, spec: JobSpec): Promise<string> {
  const [enqueued] = await q.enqueue(queue, [spec]);
  assert.equal(enqueued?.duplicate, false);
  return enqueued.id;
}

/** Takes one job, polling until one is available (a freed lease, a retry due); fails after a while. */
async function takeOne(q: JobQueue, queue: string): Promise<JobLease> {
  const [lease] = await poll(async () => {
    const leases = await q.take(queue, { max: 1, leaseMs: LONG, waitMs: 250 });
    return leases.length > 0 ? leases : undefined;
  }, `a job of ${queue} to be available`);
  return lease!;
}

/** Calls `check` until it returns something; fails after `PATIENCE_MS`. */
async function poll<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + PATIENCE_MS;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) assert.fail(`waited ${PATIENCE_MS} ms for ${what}`);
    await sleep(50);
  }
}

/** Awaits `promise`, failing if it takes longer than `PATIENCE_MS` (it should be prompt). */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new assert.AssertionError({ message: `waited ${PATIENCE_MS} ms for ${what}` })),
      PATIENCE_MS,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Leases as `{ key: payload }`, to compare regardless of order. */
function byKey(leases: readonly JobLease[]): Record<string, JsonValue> {
  return Object.fromEntries(leases.map((l) => [l.key, l.payload]));
}

/** A status with only the fields set (an absent `error` and an `error: undefined` compare alike). */
function pick(status: JobStatus | undefined): Partial<JobStatus> | undefined {
  if (status === undefined) return undefined;
  return Object.fromEntries(Object.entries(status).filter(([, v]) => v !== undefined));
}

/** A queue name no other case (or earlier run against a shared server) uses. */
function uniqueName(): string {
  return `q_${randomBytes(5).toString("hex")}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
