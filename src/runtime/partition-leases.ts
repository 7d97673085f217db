// Shares a stream's partitions among the processes of one role (land, speed) through the job queue.
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";
import type { JobLease, JobQueue } from "../backends/contracts/index.js";

/** What a PartitionLeases needs. */
export interface PartitionLeasesOptions {
  readonly queue: JobQueue;
  /** The role whose work is shared, e.g. `land`: queues `<role>-partitions` and `<role>-demand`. */
  readonly role: string;
  /** Partitions of the stream backend: leases `p0` … `p<partitions - 1>`. */
  readonly partitions: number;
  readonly log: Logger;
  /** How long a lease lasts without a heartbeat (default 15 s): how soon a crashed worker's partitions move. */
  readonly leaseMs?: number;
  /** Starts the work of a partition this process now holds (e.g. restore its position, consume). */
  acquire(partition: number): Promise<void>;
  /**
   * Stops the work of a partition. `lost`: the lease ended before this process released it (it
   * may already be held elsewhere), so nothing more may be committed for it; the catalog refuses
   * a commit from a stale position anyway.
   */
  release(partition: number, lost: boolean): Promise<void>;
}

/** Deliveries before a partition's job would fail for good: never, in practice (see `#enqueueAll`). */
const ATTEMPTS = 1_000_000;

/**
 * Holds a share of a stream's partitions for one process of a role: each partition is a job of
 * the shared JobQueue that is never completed, leased by the process that works on it and kept by
 * heartbeats. A process that crashes stops heartbeating, its leases end, and the other processes
 * take its partitions over (within `leaseMs` and the queue's detection delay). Exactly once does
 * not depend on the leases: the catalog and the speed store refuse a commit from a stale position,
 * so two holders of one partition (a lease lost during a long pause) cannot both commit a range.
 *
 * Balance: a process takes its first partition at once and each further one only after waiting a
 * second per partition it holds, so processes that start together split the partitions. A process
 * that holds none asks for work (a job in `<role>-demand`); a process holding two or more answers by
 * handing one back, so a process added later gets a share.
 */
export class PartitionLeases {
  readonly #o: PartitionLeasesOptions;
  readonly #leaseMs: number;
  readonly #queueName: string;
  readonly #demandName: string;
  readonly #id = randomUUID().slice(0, 8);
  readonly #held = new Map<number, { lease: JobLease; beatAt: number; since: number }>();
  #abort = new AbortController();
  #stopping = false;
  #loop: Promise<void> | undefined;
  #lastAcquire = 0;
  #cooldownUntil = 0;
  #enqueuedAt = -Infinity;

  constructor(options: PartitionLeasesOptions) {
    this.#o = options;
    this.#leaseMs = options.leaseMs ?? 15_000;
    this.#queueName = `${options.role}-partitions`;
    this.#demandName = `${options.role}-demand`;
  }

  /** The partitions this process holds now, ascending. */
  get held(): number[] {
    return [...this.#held.keys()].sort((a, b) => a - b);
  }

  /** Starts taking partitions in the background. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Releases every partition (its work stopped first) and stops. Idempotent. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    await this.#loop;
    for (const [partition, { lease }] of [...this.#held]) {
      this.#held.delete(partition);
      await this.#release(partition, false);
      // Handed back at once, so another process need not wait for the lease to end.
      await this.#o.queue.fail(lease, "released at stop").catch(() => false);
    }
  }

  async #run(): Promise<void> {
    const o = this.#o;
    let failures = 0;
    while (!this.#stopping) {
      try {
        await this.#step();
        failures = 0;
      } catch (e) {
        if (this.#stopping) break;
        failures++;
        o.log.warn({ err: e, role: o.role }, "partition leases: step failed; retrying");
        await this.#sleep(Math.min(this.#leaseMs / 3, 200 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  async #step(): Promise<void> {
    const o = this.#o;
    const now = Date.now();
    // Jobs of partitions are never completed; should one end anyway (a backend's retention, or
    // a failed delivery), enqueueing again brings it back. Live keys are not enqueued twice.
    if (now - this.#enqueuedAt >= 10_000) {
      await this.#enqueueAll();
      this.#enqueuedAt = now;
    }
    await this.#heartbeat();
    if (this.#held.size === 0)
      await o.queue.enqueue(this.#demandName, [
        { key: "demand", payload: { from: this.#id }, maxAttempts: 1 },
      ]);
    else if (this.#held.size >= 2) await this.#answerDemand();
    const beatDue = Math.min(
      ...[...this.#held.values()].map((h) => h.beatAt + this.#leaseMs / 3 - Date.now()),
      this.#leaseMs / 3,
    );
    const spacing = this.#lastAcquire + 1_000 * this.#held.size - Date.now();
    const canTake =
      this.#held.size < o.partitions && Date.now() >= this.#cooldownUntil && spacing <= 0;
    if (!canTake) {
      await this.#sleep(Math.max(50, Math.min(beatDue, 500, Math.max(spacing, 50))));
      return;
    }
    const [lease] = await o.queue.take(this.#queueName, {
      max: 1,
      leaseMs: this.#leaseMs,
      waitMs: Math.max(0, Math.min(beatDue, 1_000)),
      signal: this.#abort.signal,
    });
    if (!lease) return;
    const partition = (lease.payload as { partition: number }).partition;
    if (this.#stopping) {
      await o.queue.fail(lease, "released at stop");
      return;
    }
    this.#held.set(partition, { lease, beatAt: Date.now(), since: Date.now() });
    this.#lastAcquire = Date.now();
    try {
      await o.acquire(partition);
      o.log.info({ role: o.role, partition, held: this.held }, "partition acquired");
    } catch (e) {
      this.#held.delete(partition);
      o.log.error(
        { err: e, role: o.role, partition },
        "partition could not start; handing it back",
      );
      await o.queue.fail(lease, `could not start: ${(e as Error).message}`, {
        retryAfterMs: 1_000,
      });
    }
  }

  /** Extends every lease due; a lost one stops its partition's work. */
  async #heartbeat(): Promise<void> {
    for (const [partition, h] of [...this.#held]) {
      if (Date.now() - h.beatAt < this.#leaseMs / 3) continue;
      if (await this.#o.queue.heartbeat(h.lease)) {
        h.beatAt = Date.now();
        continue;
      }
      this.#held.delete(partition);
      this.#o.log.warn(
        { role: this.#o.role, partition },
        "partition lease lost; stopping its work",
      );
      await this.#release(partition, true);
    }
  }

  /** A process without partitions asked for work: hand one back (the newest taken). */
  async #answerDemand(): Promise<void> {
    const q = this.#o.queue;
    const [demand] = await q.take(this.#demandName, { max: 1, leaseMs: 10_000 });
    if (!demand) return;
    await q.complete(demand);
    if ((demand.payload as { from?: string }).from === this.#id) return;
    const [partition, { lease }] = [...this.#held].sort((a, b) => b[1].since - a[1].since)[0]!;
    this.#held.delete(partition);
    await this.#release(partition, false);
    await q.fail(lease, "handed back to balance the partitions");
    // Leave it to the process that asked.
    this.#cooldownUntil = Date.now() + 5_000;
    this.#o.log.info({ role: this.#o.role, partition, held: this.held }, "partition handed back");
  }

  async #release(partition: number, lost: boolean): Promise<void> {
    try {
      await this.#o.release(partition, lost);
    } catch (e) {
      this.#o.log.error({ err: e, role: this.#o.role, partition }, "stopping a partition failed");
    }
  }

  #enqueueAll(): Promise<unknown> {
    return this.#o.queue.enqueue(
      this.#queueName,
      Array.from({ length: this.#o.partitions }, (_, partition) => ({
        key: `p${partition}`,
        payload: { partition },
        maxAttempts: ATTEMPTS,
      })),
    );
  }

  /** Waits `ms`, or less if stopped. */
  #sleep(ms: number): Promise<void> {
    return delay(ms, undefined, { signal: this.#abort.signal }).catch(() => undefined);
  }
}
