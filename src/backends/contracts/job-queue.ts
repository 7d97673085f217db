// The JobQueue contract: tasks leased to workers, delivered at least once, for idempotent tasks.

/** A JSON value: what a payload or a result can be. */
export type JsonValue =
  null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A job to enqueue. */
export interface JobSpec {
  /**
   * Names the task, e.g. `orders_daily/2024-05-01`: unique among the queue's live (pending or
   * active) jobs. A non-empty string without NUL.
   */
  readonly key: string;
  /** What the worker needs to run the task; returned equal by `take` (object key order may differ). */
  readonly payload: JsonValue;
  /** Deliveries before the job fails for good, an integer >= 1. Default 3. */
  readonly maxAttempts?: number;
}

/** The outcome of enqueueing one job. */
export interface Enqueued {
  /** The job's id: the new job's, or the live job's that already had the key. */
  readonly id: string;
  /** True when a live job already had the key: nothing was enqueued. */
  readonly duplicate: boolean;
}

/** Options of `take`. */
export interface TakeOptions {
  /** Most jobs to lease, an integer >= 1. */
  readonly max: number;
  /** How long the lease lasts, in milliseconds (an integer >= 1); `heartbeat` extends it. */
  readonly leaseMs: number;
  /** When no job is available, wait up to this long for one (long poll). Default 0. */
  readonly waitMs?: number;
  /** Aborts a waiting take; it then resolves with what it has (nothing). */
  readonly signal?: AbortSignal;
}

/** One delivery of a job to one taker: what `heartbeat`, `complete` and `fail` act on. */
export interface JobLease {
  readonly queue: string;
  readonly id: string;
  readonly key: string;
  readonly payload: JsonValue;
  /** Which delivery this is, from 1; a delivery is one attempt. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** The lease length asked for; `heartbeat` extends by it by default. */
  readonly leaseMs: number;
  /**
   * Epoch ms (this process's clock) by which the lease ends unless extended: measured from before
   * the take was sent, so the backend never ends it earlier.
   */
  readonly expiresAt: number;
}

/** Where a job is in its life. */
export type JobState = "pending" | "active" | "completed" | "failed";

/** What `status` reports about a job: what a run summary needs. */
export interface JobStatus {
  readonly id: string;
  readonly key: string;
  /**
   * `pending`: waiting for a taker (maybe after a retry delay); `active`: leased; `completed`;
   * `failed`: out of attempts, for good.
   */
  readonly state: JobState;
  /** Deliveries so far (0 until first taken). */
  readonly attempts: number;
  readonly maxAttempts: number;
  /** The error of the last failed attempt; cleared when the job completes. */
  readonly error?: string;
  /** What `complete` was given, if anything. */
  readonly result?: JsonValue;
}

/** Options of `fail`. */
export interface FailOptions {
  /** When the job has attempts left, deliver it again no sooner than this, in ms. Default 0. */
  readonly retryAfterMs?: number;
}

/** Optional powers of a JobQueue backend. */
export interface JobQueueCapabilities {
  /**
   * True when every instance opened on the same storage (other processes and machines included)
   * shares the queues, so workers in many processes can share a run; false for a queue that lives
   * in one instance's memory.
   */
  readonly shared: boolean;
}

/**
 * Named queues of jobs leased to workers: a scheduler enqueues (model, day) tasks, any number of
 * workers take them. Delivery is at least once, so tasks must be idempotent: running one twice
 * (even at the same time, see leases) must leave the same outcome as running it once.
 *
 * - `enqueue` resolves when every job is durable (committed in PostgreSQL; the in-process queue
 *   keeps nothing past its process), all of them or none. A job's `key` is unique among the
 *   queue's live jobs (pending or active): enqueueing a live key is a no-op that returns the live
 *   job's id with `duplicate: true` (its payload and `maxAttempts` stay), so a scheduler that
 *   crashes and plans again does not double work; a key repeated in one call is enqueued once.
 *   Once a job completed or failed, its key may be enqueued again as a new job (a re-run).
 *   A queue exists once something is enqueued in it.
 * - `take` leases up to `max` available jobs to the caller for `leaseMs`. A job is leased to one
 *   taker at a time, across every instance on the same storage. Each delivery is an attempt,
 *   numbered from 1. A job whose lease ends without `complete` or `fail` (its worker crashed, hung
 *   or stopped) becomes available again and is delivered with the next attempt number; the
 *   backend notices an ended lease promptly (the in-process queue at once, PostgreSQL within
 *   about a second) but never before `expiresAt`.
 * - With nothing available, `take` waits up to `waitMs` for a job to become available (enqueued
 *   through any instance, freed by an ended lease, or due after a retry delay) and returns as soon
 *   as one is; it resolves `[]` at the timeout, when `signal` aborts, or when the instance closes.
 * - Order: none is guaranteed. Jobs are mostly handed out in enqueue order, but retries, ended
 *   leases and concurrent takers reorder them.
 * - A lease is one delivery (job id and attempt). `heartbeat`, `complete` and `fail` act only
 *   while the job is still held under that delivery: not completed, failed or freed. Otherwise
 *   they resolve `false` and change nothing: the lease was lost, and another taker may be running
 *   the task, so a worker whose `heartbeat` resolves `false` should abandon it. A lease past its
 *   `expiresAt` is lost once the backend frees the job; until then a late call still counts.
 * - `heartbeat(lease, leaseMs?)` extends the lease to `leaseMs` (default: the lease's own) from
 *   now. A long task calls it well within each lease period (every `leaseMs / 3`, say).
 * - `complete(lease, result?)` marks the job completed and keeps `result` (a JSON value).
 * - `fail(lease, error, { retryAfterMs })` ends the attempt: with attempts left
 *   (`attempt < maxAttempts`) the job is pending again, available after `retryAfterMs` (default
 *   0); otherwise it is failed for good, with `error` kept. A lease that ends unfinished counts as
 *   a failed attempt with the error `lease expired`, so a task that kills its worker every time
 *   ends failed rather than looping.
 * - `status(queue, keys)` reports, for each key that has jobs, the latest one (absent keys are
 *   left out). Finished jobs stay visible for the backend's retention (stated by each backend).
 * - `close()` stops the instance. Waiting takes resolve `[]`, calls in flight settle, and later
 *   calls reject with TributaryError TRB_QUEUE_CLOSED; closing again does
 *   nothing. Leases are not released: jobs taken and unfinished stay leased until their leases
 *   end, exactly as after a crash, so a stop and a crash recover alike (finish or fail jobs
 *   before closing to hand them back at once).
 * - Queue names and keys are non-empty strings without NUL; a bad argument (an empty key, `max`
 *   or `leaseMs` below 1, a negative `waitMs` or `retryAfterMs`, `maxAttempts` below 1) is a
 *   RangeError, and nothing changes. Payloads and results are JSON values; their strings hold no
 *   NUL (PostgreSQL text cannot).
 *
 * @example
 * await queue.enqueue("batch", [{ key: "orders_daily/2024-05-01", payload: { model: "orders_daily", day: "2024-05-01" } }]);
 * for (const job of await queue.take("batch", { max: 1, leaseMs: 60_000, waitMs: 5_000 })) {
 *   try {
 *     await run(job.payload); // heartbeats every 20 s while it runs
 *     await queue.complete(job);
 *   } catch (e) {
 *     await queue.fail(job, String(e), { retryAfterMs: 10_000 });
 *   }
 * }
 */
export interface JobQueue {
  readonly capabilities: JobQueueCapabilities;
  /** Enqueues jobs, deduplicated by key among live jobs; results are in input order. */
  enqueue(queue: string, jobs: readonly JobSpec[]): Promise<Enqueued[]>;
  /** Leases up to `max` available jobs, waiting up to `waitMs` for one. */
  take(queue: string, options: TakeOptions): Promise<JobLease[]>;
  /** Extends a lease; `false` when the lease was lost. */
  heartbeat(lease: JobLease, leaseMs?: number): Promise<boolean>;
  /** Completes the job; `false` when the lease was lost (nothing recorded). */
  complete(lease: JobLease, result?: JsonValue): Promise<boolean>;
  /** Fails this attempt (retried while attempts are left); `false` when the lease was lost. */
  fail(lease: JobLease, error: string, options?: FailOptions): Promise<boolean>;
  /** The latest job of each key that has one. */
  status(queue: string, keys: readonly string[]): Promise<Map<string, JobStatus>>;
  /** Stops the instance; see the contract above. */
  close(): Promise<void>;
}
