// The embedded JobQueue: jobs in this process's memory, leases ended by timers.
import { randomUUID } from "node:crypto";
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
import {
  checkName,
  checkNonNegative,
  checkPositiveInteger,
  checkSpec,
  checkTake,
} from "../contracts/job-queue-checks.js";

/** The `maxAttempts` of a job that names none (see `JobSpec`). */
const DEFAULT_MAX_ATTEMPTS = 3;

/** The error kept when a lease ends without `complete` or `fail`. */
const LEASE_EXPIRED = "lease expired";

/** Longest delay setTimeout honours (a longer one fires at once): longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Job {
  readonly queue: string;
  readonly id: string;
  readonly key: string;
  readonly payload: JsonValue;
  readonly maxAttempts: number;
  state: JobState;
  /** Deliveries so far; the current one's number while active. */
  attempts: number;
  /** While pending: epoch ms from which it may be taken. */
  availableAt: number;
  /** While active: epoch ms at which the lease ends. */
  leaseEnd: number;
  error: string | undefined;
  result: JsonValue | undefined;
  /** Ends the lease (active) or wakes takers when a retry delay is over (pending). */
  timer: NodeJS.Timeout | undefined;
}

interface Queue {
  /** The latest job of each key, live or finished. */
  readonly byKey: Map<string, Job>;
  /** Pending jobs in the order they became pending: the order `take` hands them out. */
  readonly pending: Set<Job>;
  /** Wakes the takes waiting on this queue. */
  readonly waiters: Set<() => void>;
}

/**
 * A JobQueue in this process's memory: nothing outlives the process (or `close`), and only this
 * instance sees its jobs (`capabilities.shared` is false). That is what the embedded batch runs
 * need: they run in one process, and their run records in the catalog already make a restarted
 * run resumable. Finished jobs stay visible to `status` until `close`.
 * @example
 * const queue = new LocalJobQueue();
 * await queue.enqueue("batch", [{ key: "orders_daily/2024-05-01", payload: { day: "2024-05-01" } }]);
 * const [job] = await queue.take("batch", { max: 1, leaseMs: 60_000 });
 */
export class LocalJobQueue implements JobQueue {
  readonly capabilities: JobQueueCapabilities = { shared: false };
  readonly #queues = new Map<string, Queue>();
  #closed = false;

  async enqueue(queue: string, jobs: readonly JobSpec[]): Promise<Enqueued[]> {
    this.#open();
    checkName("queue", queue);
    for (const job of jobs) checkSpec(job);
    const q = this.#queue(queue);
    const now = Date.now();
    const results = jobs.map((spec): Enqueued => {
      const live = q.byKey.get(spec.key);
      if (live !== undefined && (live.state === "pending" || live.state === "active"))
        return { id: live.id, duplicate: true };
      const job: Job = {
        queue,
        id: randomUUID(),
        key: spec.key,
        // A copy: the caller may change its object after enqueue, as it could not with a server.
        payload: structuredClone(spec.payload),
        maxAttempts: spec.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        state: "pending",
        attempts: 0,
        availableAt: now,
        leaseEnd: 0,
        error: undefined,
        result: undefined,
        timer: undefined,
      };
      q.byKey.set(job.key, job);
      q.pending.add(job);
      return { id: job.id, duplicate: false };
    });
    if (results.some((r) => !r.duplicate)) wake(q);
    return results;
  }

  async take(queue: string, options: TakeOptions): Promise<JobLease[]> {
    this.#open();
    checkName("queue", queue);
    checkTake(options);
    const deadline = Date.now() + (options.waitMs ?? 0);
    for (;;) {
      if (this.#closed || options.signal?.aborted) return [];
      const leases = this.#lease(queue, options);
      const left = deadline - Date.now();
      if (leases.length > 0 || left <= 0) return leases;
      await this.#wait(queue, Math.min(left, this.#nextDue(queue)), options.signal);
    }
  }

  async heartbeat(lease: JobLease, leaseMs = lease.leaseMs): Promise<boolean> {
    this.#open();
    checkPositiveInteger("leaseMs", leaseMs);
    const job = this.#held(lease);
    if (job === undefined) return false;
    job.leaseEnd = Date.now() + leaseMs;
    this.#armLease(job);
    return true;
  }

  async complete(lease: JobLease, result?: JsonValue): Promise<boolean> {
    this.#open();
    const job = this.#held(lease);
    if (job === undefined) return false;
    clearTimeout(job.timer);
    job.timer = undefined;
    job.state = "completed";
    job.error = undefined;
    job.result = result === undefined ? undefined : structuredClone(result);
    return true;
  }

  async fail(lease: JobLease, error: string, options: FailOptions = {}): Promise<boolean> {
    this.#open();
    const retryAfterMs = options.retryAfterMs ?? 0;
    checkNonNegative("retryAfterMs", retryAfterMs);
    const job = this.#held(lease);
    if (job === undefined) return false;
    this.#endAttempt(job, String(error), retryAfterMs);
    return true;
  }

  async status(queue: string, keys: readonly string[]): Promise<Map<string, JobStatus>> {
    this.#open();
    checkName("queue", queue);
    const result = new Map<string, JobStatus>();
    const q = this.#queues.get(queue);
    for (const key of keys) {
      const job = q?.byKey.get(key);
      if (job === undefined) continue;
      result.set(key, {
        id: job.id,
        key: job.key,
        state: job.state,
        attempts: job.attempts,
        maxAttempts: job.maxAttempts,
        ...(job.error === undefined ? {} : { error: job.error }),
        ...(job.result === undefined ? {} : { result: structuredClone(job.result) }),
      });
    }
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Nothing outlives the instance, so its timers only need stopping; waiting takes return [].
    for (const q of this.#queues.values()) {
      for (const job of q.byKey.values()) clearTimeout(job.timer);
      wake(q);
    }
  }

  #open(): void {
    if (this.#closed) {
      throw new TributaryError(
        "TRB_QUEUE_CLOSED",
        "The job queue is closed: it takes no more calls; open a new instance.",
      );
    }
  }

  #queue(name: string): Queue {
    let q = this.#queues.get(name);
    if (q === undefined) {
      q = { byKey: new Map(), pending: new Set(), waiters: new Set() };
      this.#queues.set(name, q);
    }
    return q;
  }

  /** Leases up to `max` pending jobs that are due. */
  #lease(queue: string, options: TakeOptions): JobLease[] {
    const q = this.#queues.get(queue);
    if (q === undefined) return [];
    const now = Date.now();
    const leases: JobLease[] = [];
    for (const job of q.pending) {
      if (leases.length >= options.max) break;
      if (job.availableAt > now) continue;
      q.pending.delete(job);
      job.state = "active";
      job.attempts += 1;
      job.leaseEnd = now + options.leaseMs;
      this.#armLease(job);
      leases.push({
        queue,
        id: job.id,
        key: job.key,
        payload: structuredClone(job.payload),
        attempt: job.attempts,
        maxAttempts: job.maxAttempts,
        leaseMs: options.leaseMs,
        expiresAt: now + options.leaseMs,
      });
    }
    return leases;
  }

  /** (Re)arms the timer that ends the current delivery's lease at `leaseEnd`, never before. */
  #armLease(job: Job): void {
    clearTimeout(job.timer);
    const attempt = job.attempts;
    job.timer = setTimeout(
      () => {
        if (job.state !== "active" || job.attempts !== attempt) return;
        // Timers may fire a little early, and long ones are capped: check the clock.
        if (Date.now() < job.leaseEnd) this.#armLease(job);
        else this.#endAttempt(job, LEASE_EXPIRED, 0);
      },
      Math.min(Math.max(1, job.leaseEnd - Date.now()), MAX_TIMER_MS),
    );
    // A lease timer alone must not keep a finished process alive.
    job.timer.unref();
  }

  /** Ends an active delivery as failed: pending again with attempts left, else failed for good. */
  #endAttempt(job: Job, error: string, retryAfterMs: number): void {
    const q = this.#queue(job.queue);
    clearTimeout(job.timer);
    job.timer = undefined;
    job.error = error;
    if (job.attempts >= job.maxAttempts) {
      job.state = "failed";
      return;
    }
    job.state = "pending";
    job.availableAt = Date.now() + retryAfterMs;
    q.pending.add(job);
    if (retryAfterMs === 0) {
      wake(q);
    } else {
      job.timer = setTimeout(() => wake(q), Math.min(retryAfterMs, MAX_TIMER_MS));
      job.timer.unref();
    }
  }

  /** The job still held under the lease's delivery, if it is. */
  #held(lease: JobLease): Job | undefined {
    const job = this.#queues.get(lease.queue)?.byKey.get(lease.key);
    if (job === undefined || job.id !== lease.id) return undefined;
    return job.state === "active" && job.attempts === lease.attempt ? job : undefined;
  }

  /** Milliseconds until the earliest delayed pending job is due (Infinity when none is delayed). */
  #nextDue(queue: string): number {
    let next = Infinity;
    for (const job of this.#queues.get(queue)?.pending ?? [])
      next = Math.min(next, job.availableAt);
    return Math.max(0, next - Date.now());
  }

  /** Resolves after `ms`, when the queue gets a job, on abort, or at close. */
  #wait(queue: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
    const q = this.#queue(queue);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        q.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, MAX_TIMER_MS));
      q.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}

function wake(q: Queue): void {
  for (const waiter of [...q.waiters]) waiter();
}
