// The distributed JobQueue: pg-boss 10 queues in their own schema, with leases checked per delivery.
import { randomUUID } from "node:crypto";
import type PgBoss from "pg-boss";
import { TributaryError } from "../../errors.js";
import type {
  Enqueued,
  FailOptions,
  JobLease,
  JobQueue,
  JobQueueCapabilities,
  JobSpec,
  JobState,
  JobStatus,
  JsonValue,
  TakeOptions,
} from "../contracts/index.js";
import { connectPostgres, type PgQueryable, type PostgresConnection } from "./connection.js";
import {
  checkName,
  checkNonNegative,
  checkPositiveInteger,
  checkSpec,
  checkTake,
} from "../contracts/job-queue-checks.js";

/** Options of `PostgresJobQueue.open`. */
export interface PostgresJobQueueOptions {
  /** Connection string, e.g. `postgres://tributary@db.internal:5432/tributary`. */
  readonly url: string;
  /**
   * Schema that holds pg-boss's tables, created if missing (default `tributary_jobs`): lowercase
   * letters, digits and `_`, at most 50 (pg-boss's limit). Every instance that shares queues names
   * the same schema.
   */
  readonly schema?: string;
  /** Most connections of this instance's own pool (default 10); pg-boss keeps 2 more. */
  readonly maxConnections?: number;
  /** How often a waiting `take` looks for jobs enqueued or freed by other processes (default 250 ms). */
  readonly pollIntervalMs?: number;
  /** How often this instance frees jobs whose leases ended, when it takes (default 1000 ms). */
  readonly sweepIntervalMs?: number;
  /**
   * Called with errors of pg-boss's background maintenance (archiving, deleting old jobs), which
   * retries on its next round. Default: a process warning.
   */
  readonly onError?: (error: Error) => void;
}

/** The schema used when none is given: apart from the catalog's, since pg-boss owns its tables. */
export const DEFAULT_JOBS_SCHEMA = "tributary_jobs";

/** The `maxAttempts` of a job that names none (see `JobSpec`). */
const DEFAULT_MAX_ATTEMPTS = 3;

/** pg-boss 10's schema names: `\w`, not starting with a digit, at most 50. */
const BOSS_SCHEMA = /^[a-z_][a-z0-9_]{0,49}$/;

/** What pg-boss writes as the output of a job whose lease (`expire_in`) ended while active. */
const BOSS_TIMEOUT = "job failed by timeout in active state";

/** The error the contract reports for an attempt whose lease ended. */
const LEASE_EXPIRED = "lease expired";

/** The columns `take` and `status` read. */
interface JobRow {
  id: string;
  key: string;
  state: "created" | "retry" | "active" | "completed" | "cancelled" | "failed";
  payload: JsonValue;
  started: boolean;
  retry_count: number;
  retry_limit: number;
  output: { result?: JsonValue; error?: unknown; value?: { message?: unknown } } | null;
}

/**
 * A JobQueue on PostgreSQL through pg-boss 10 (loaded on first `open`): every instance on the
 * same schema shares the queues, in any process on any machine. A queue is a pg-boss queue of
 * the `standard` policy, created on first enqueue; a job is a pg-boss job whose singleton key is
 * the contract's key. The mapping, and where this backend adds to pg-boss:
 *
 * - `enqueue` inserts with pg-boss `insert` (`retryLimit` = maxAttempts - 1), in one transaction
 *   that first takes a per-queue advisory lock and looks up the live jobs of the keys: pg-boss 10
 *   has no policy that makes a key unique among created, retry and active jobs together.
 * - `take` runs pg-boss's fetch statement (`FOR UPDATE SKIP LOCKED`, priority then creation
 *   order) itself, setting the lease (`expire_in`) in the same UPDATE: pg-boss's `fetch()` sets
 *   no per-call expiry and returns `[]` on any error (a lost connection would look like an idle
 *   queue). A delivery is identified by pg-boss's `retry_count`, which the fetch increments on
 *   every redelivery: attempt = retry_count + 1.
 * - Leases end through pg-boss's own expiry (`expire()`: active jobs past `started_on +
 *   expire_in` go to retry, or to failed once out of retries). pg-boss runs it only every
 *   maintenance round (every 2 minutes); each instance also runs it when it takes or reports status, at
 *   most every `sweepIntervalMs`, so an ended lease is freed within about a second of its end.
 * - `heartbeat` moves `expire_in` (pg-boss 10 has no heartbeat); `complete` and `fail` call
 *   pg-boss's `complete` and `fail` in a transaction that first locks the job row and checks that
 *   it is still active under the lease's `retry_count`: pg-boss checks only the state, so a stale
 *   worker would otherwise complete or fail another worker's delivery. `fail` then sets
 *   `start_after` for `retryAfterMs` (pg-boss's retry delay is per job, in whole seconds).
 * - Waiting takes poll every `pollIntervalMs`, and wake at once for enqueues made through the
 *   same instance.
 * - Retention is pg-boss's: finished jobs move to its archive after 12 hours and are deleted
 *   7 days later (`status` reads both); a job still pending 14 days after it was enqueued is
 *   archived unfinished.
 *
 * @example
 * const queue = await PostgresJobQueue.open({ url: "postgres://postgres@127.0.0.1:5432/test" });
 * await queue.enqueue("batch", [{ key: "orders_daily/2024-05-01", payload: { day: "2024-05-01" } }]);
 * await queue.close();
 */
export class PostgresJobQueue implements JobQueue {
  readonly capabilities: JobQueueCapabilities = { shared: true };
  readonly #db: PostgresConnection;
  readonly #boss: PgBoss;
  readonly #schema: string;
  readonly #pollIntervalMs: number;
  readonly #sweepIntervalMs: number;
  /** Queues this instance created (or found) in pg-boss. */
  readonly #created = new Set<string>();
  /** Wakes waiting takes: at enqueue through this instance (per queue) and at close. */
  readonly #waiters = new Map<string, Set<() => void>>();
  /** Calls in flight, which `close` waits for. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #lastSweep = 0;
  #sweep: Promise<void> | undefined;
  #closed = false;

  private constructor(
    db: PostgresConnection,
    boss: PgBoss,
    options: PostgresJobQueueOptions & { schema: string },
  ) {
    this.#db = db;
    this.#boss = boss;
    this.#schema = options.schema;
    this.#pollIntervalMs = options.pollIntervalMs ?? 250;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? 1000;
  }

  /**
   * Connects, installs (or migrates) pg-boss's tables in the schema, and starts pg-boss's
   * maintenance. Loads `pg` and `pg-boss` here, so a process that never opens it loads neither.
   */
  static async open(options: PostgresJobQueueOptions): Promise<PostgresJobQueue> {
    const schema = options.schema ?? DEFAULT_JOBS_SCHEMA;
    if (!BOSS_SCHEMA.test(schema)) {
      throw new TributaryError(
        "TRB_CONFIG_INVALID",
        `job queue schema ${JSON.stringify(schema)} must be lowercase letters, digits and _ (at most 50)`,
      );
    }
    for (const [what, n] of [
      ["pollIntervalMs", options.pollIntervalMs],
      ["sweepIntervalMs", options.sweepIntervalMs],
    ] as const) {
      if (n !== undefined) checkPositiveInteger(what, n);
    }
    const db = await connectPostgres({
      url: options.url,
      schema,
      ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
    });
    try {
      const { default: Boss } = await import("pg-boss");
      // pg-boss's own pool runs its install, queue DDL and maintenance; a failure inside one of its
      // BEGIN … COMMIT scripts leaves that connection in an aborted transaction until the server's
      // idle timeout ends it, so it stays out of the pool that serves takes and completes.
      const boss = new Boss({
        connectionString: options.url,
        schema,
        max: 2,
        application_name: "tributary-jobs",
        schedule: false,
        supervise: true,
        migrate: true,
      });
      const onError =
        options.onError ??
        ((e: Error) => process.emitWarning(`job queue maintenance failed: ${e.message}`));
      boss.on("error", onError);
      try {
        // Processes starting together would race on installing the tables (pg-boss tolerates
        // the race, but its losing connection stays in an aborted transaction): one at a time.
        await db.transaction(async (tx) => {
          await tx.lock("pg-boss");
          await boss.start();
        });
      } catch (e) {
        await closeBossPool(boss);
        throw e;
      }
      return new PostgresJobQueue(db, boss, { ...options, schema });
    } catch (e) {
      await db.close();
      throw e;
    }
  }

  enqueue(queue: string, jobs: readonly JobSpec[]): Promise<Enqueued[]> {
    return this.#run(async () => {
      checkName("queue", queue);
      for (const job of jobs) checkSpec(job);
      if (jobs.length === 0) return [];
      await this.#ensureQueue(queue);
      const results = await this.#db.transaction(async (tx) => {
        // One enqueuer per queue at a time: the live-key check and the insert are then atomic.
        await tx.lock(`queue:${queue}`);
        const keys = [...new Set(jobs.map((j) => j.key))];
        const live = await tx.query<{ key: string; id: string }>(
          `SELECT singleton_key AS key, id FROM ${this.#table("job")}
            WHERE name = $1 AND singleton_key = ANY($2::text[]) AND state < 'completed'`,
          [queue, keys],
        );
        const ids = new Map(live.rows.map((r) => [r.key, r.id]));
        const inserts: PgBoss.JobInsert<{ payload: JsonValue }>[] = [];
        const results = jobs.map((spec): Enqueued => {
          const id = ids.get(spec.key);
          if (id !== undefined) return { id, duplicate: true };
          const fresh = randomUUID();
          ids.set(spec.key, fresh);
          inserts.push({
            id: fresh,
            name: queue,
            data: { payload: spec.payload },
            singletonKey: spec.key,
            retryLimit: (spec.maxAttempts ?? DEFAULT_MAX_ATTEMPTS) - 1,
            retryDelay: 0,
          });
          return { id: fresh, duplicate: false };
        });
        if (inserts.length > 0) {
          await this.#boss.insert(inserts, { db: bossDb(tx) });
          // pg-boss inserts with ON CONFLICT DO NOTHING and a join on its queue table, and reports
          // nothing: count, so a job it dropped is an error rather than a silent loss.
          const stored = await tx.query<{ n: number }>(
            `SELECT count(*) AS n FROM ${this.#table("job")} WHERE name = $1 AND id = ANY($2::uuid[])`,
            [queue, inserts.map((j) => j.id)],
          );
          if (stored.rows[0]?.n !== inserts.length) {
            throw new TributaryError(
              "TRB_INTERNAL",
              `pg-boss stored ${stored.rows[0]?.n ?? 0} of ${inserts.length} jobs of queue ${queue}`,
            );
          }
        }
        return results;
      });
      if (results.some((r) => !r.duplicate)) this.#wake(queue);
      return results;
    });
  }

  take(queue: string, options: TakeOptions): Promise<JobLease[]> {
    return this.#run(async () => {
      checkName("queue", queue);
      checkTake(options);
      const deadline = Date.now() + (options.waitMs ?? 0);
      for (;;) {
        if (this.#closed || options.signal?.aborted) return [];
        await this.#sweepExpired();
        const sent = Date.now();
        const { rows } = await this.#db.query<JobRow>(this.#fetchSql(), [
          queue,
          options.max,
          options.leaseMs,
        ]);
        if (rows.length > 0) {
          return rows.map((r): JobLease => ({
            queue,
            id: r.id,
            key: r.key,
            payload: r.payload,
            attempt: r.retry_count + 1,
            maxAttempts: r.retry_limit + 1,
            leaseMs: options.leaseMs,
            expiresAt: sent + options.leaseMs,
          }));
        }
        const left = deadline - Date.now();
        if (left <= 0) return [];
        await this.#wait(queue, Math.min(left, this.#pollIntervalMs), options.signal);
      }
    });
  }

  heartbeat(lease: JobLease, leaseMs = lease.leaseMs): Promise<boolean> {
    return this.#run(async () => {
      checkPositiveInteger("leaseMs", leaseMs);
      // The lease runs from started_on for expire_in: end it `leaseMs` from now.
      const { rowCount } = await this.#db.query(
        `UPDATE ${this.#table("job")}
            SET expire_in = (now() - started_on) + $4::float8 * interval '1 millisecond'
          WHERE name = $1 AND id = $2 AND state = 'active' AND retry_count = $3`,
        [lease.queue, lease.id, lease.attempt - 1, leaseMs],
      );
      return rowCount === 1;
    });
  }

  complete(lease: JobLease, result?: JsonValue): Promise<boolean> {
    return this.#run(() =>
      this.#db.transaction(async (tx) => {
        if (!(await this.#hold(tx, lease))) return false;
        const done = await this.#boss.complete(
          lease.queue,
          lease.id,
          // pg-boss 10 reads the third argument as the output whatever its type says.
          result === undefined ? {} : { result },
          { db: bossDb(tx) },
        );
        return affected(done) === 1;
      }),
    );
  }

  fail(lease: JobLease, error: string, options: FailOptions = {}): Promise<boolean> {
    return this.#run(async () => {
      const retryAfterMs = options.retryAfterMs ?? 0;
      checkNonNegative("retryAfterMs", retryAfterMs);
      return this.#db.transaction(async (tx) => {
        if (!(await this.#hold(tx, lease))) return false;
        const failed = await this.#boss.fail(
          lease.queue,
          lease.id,
          { error: String(error) },
          { db: bossDb(tx) },
        );
        if (affected(failed) !== 1) return false;
        await tx.query(
          `UPDATE ${this.#table("job")}
              SET start_after = now() + $3::float8 * interval '1 millisecond'
            WHERE name = $1 AND id = $2 AND state = 'retry'`,
          [lease.queue, lease.id, retryAfterMs],
        );
        return true;
      });
    });
  }

  status(queue: string, keys: readonly string[]): Promise<Map<string, JobStatus>> {
    return this.#run(async () => {
      checkName("queue", queue);
      await this.#sweepExpired();
      const result = new Map<string, JobStatus>();
      let missing = [...new Set(keys)];
      // Live and recent jobs are in `job`; finished ones move to `archive` after 12 hours.
      for (const table of ["job", "archive"]) {
        if (missing.length === 0) break;
        const { rows } = await this.#db.query<JobRow>(
          `SELECT DISTINCT ON (singleton_key)
                  id, singleton_key AS key, state, started_on IS NOT NULL AS started,
                  retry_count, retry_limit, output
             FROM ${this.#table(table)}
            WHERE name = $1 AND singleton_key = ANY($2::text[])
            ORDER BY singleton_key, created_on DESC`,
          [queue, missing],
        );
        for (const row of rows) result.set(row.key, toStatus(row));
        missing = missing.filter((k) => !result.has(k));
      }
      // In the order asked, like the in-process queue.
      return new Map(keys.flatMap((k) => (result.has(k) ? [[k, result.get(k)!] as const] : [])));
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiters of this.#waiters.values()) for (const wake of [...waiters]) wake();
    await Promise.allSettled([...this.#inFlight]);
    // Leases are left to end on their own (see the contract); pg-boss has no workers to stop.
    try {
      await this.#boss.stop({ graceful: false });
    } finally {
      await this.#db.close();
    }
  }

  /** Runs a call unless closed, tracked so that `close` waits for it. */
  #run<T>(call: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new TributaryError(
          "TRB_QUEUE_CLOSED",
          "The job queue is closed: it takes no more calls; open a new instance.",
        ),
      );
    }
    const running = call();
    this.#inFlight.add(running);
    const untrack = (): void => {
      this.#inFlight.delete(running);
    };
    running.then(untrack, untrack);
    return running;
  }

  #table(name: string): string {
    return `"${this.#schema}".${name}`;
  }

  /** Creates the pg-boss queue once per instance (creating an existing one does nothing). */
  async #ensureQueue(queue: string): Promise<void> {
    if (this.#created.has(queue)) return;
    // create_queue attaches a partition to pg-boss's job table: one process at a time.
    await this.#db.transaction(async (tx) => {
      await tx.lock("pg-boss");
      await this.#boss.createQueue(queue, { name: queue, policy: "standard" });
    });
    this.#created.add(queue);
  }

  /**
   * pg-boss's fetch statement for the `standard` policy, plus the lease: the UPDATE sets
   * `expire_in`, and counts a redelivery in `retry_count` as pg-boss does.
   */
  #fetchSql(): string {
    const job = this.#table("job");
    return `
      WITH next AS (
        SELECT id FROM ${job}
         WHERE name = $1 AND state < 'active' AND start_after < now()
         ORDER BY priority DESC, created_on, id
         LIMIT $2
         FOR UPDATE SKIP LOCKED
      )
      UPDATE ${job} j
         SET state = 'active',
             started_on = now(),
             retry_count = CASE WHEN j.started_on IS NOT NULL THEN j.retry_count + 1 ELSE j.retry_count END,
             expire_in = $3::float8 * interval '1 millisecond'
        FROM next
       WHERE j.name = $1 AND j.id = next.id
      RETURNING j.id, j.singleton_key AS key, j.data -> 'payload' AS payload, j.retry_count, j.retry_limit`;
  }

  /** Locks the job row when it is still active under the lease's delivery; false otherwise. */
  async #hold(tx: PgQueryable, lease: JobLease): Promise<boolean> {
    const { rowCount } = await tx.query(
      `SELECT 1 FROM ${this.#table("job")}
        WHERE name = $1 AND id = $2 AND state = 'active' AND retry_count = $3
        FOR UPDATE`,
      [lease.queue, lease.id, lease.attempt - 1],
    );
    return rowCount === 1;
  }

  /** Frees jobs whose leases ended, at most every `sweepIntervalMs` (concurrent callers share one run). */
  async #sweepExpired(): Promise<void> {
    if (this.#sweep === undefined && Date.now() - this.#lastSweep >= this.#sweepIntervalMs) {
      this.#sweep = this.#boss.expire().finally(() => {
        this.#lastSweep = Date.now();
        this.#sweep = undefined;
      });
    }
    await this.#sweep;
  }

  #wake(queue: string): void {
    for (const wake of [...(this.#waiters.get(queue) ?? [])]) wake();
  }

  /** Resolves after `ms`, at an enqueue through this instance, on abort, or at close. */
  #wait(queue: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
    let waiters = this.#waiters.get(queue);
    if (waiters === undefined) {
      waiters = new Set();
      this.#waiters.set(queue, waiters);
    }
    const set = waiters;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(queue) === set) this.#waiters.delete(queue);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}

/**
 * Ends the pool of a pg-boss whose start failed (`stop()` does nothing before a start finished).
 * The start's error is the one to report; failing to end a pool it opened adds nothing to it.
 */
async function closeBossPool(boss: PgBoss): Promise<void> {
  const db = boss.getDb() as PgBoss.Db & { opened?: boolean; close?: () => Promise<void> };
  if (db.opened === true) await db.close?.().catch(() => undefined);
}

/** Runs pg-boss's statements on one transaction's client. */
function bossDb(tx: PgQueryable): PgBoss.Db {
  return { executeSql: (text, values) => tx.query(text, values ?? []) };
}

/** The rows a pg-boss complete or fail changed (its result type is not declared in 10.x). */
function affected(result: unknown): number {
  return (result as { affected?: number } | undefined)?.affected ?? 0;
}

function toStatus(row: JobRow): JobStatus {
  const state: JobState =
    row.state === "created" || row.state === "retry"
      ? "pending"
      : row.state === "cancelled"
        ? "failed"
        : row.state;
  const output = row.output ?? {};
  const status: JobStatus = {
    id: row.id,
    key: row.key,
    state,
    attempts: row.started ? row.retry_count + 1 : 0,
    maxAttempts: row.retry_limit + 1,
  };
  if (state === "completed") {
    return "result" in output ? { ...status, result: output.result as JsonValue } : status;
  }
  const error =
    typeof output.error === "string"
      ? output.error
      : output.value?.message === BOSS_TIMEOUT
        ? LEASE_EXPIRED
        : typeof output.value?.message === "string"
          ? output.value.message
          : row.state === "cancelled"
            ? "cancelled"
            : undefined;
  return error === undefined ? status : { ...status, error };
}
