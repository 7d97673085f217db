// Argument checks of the JobQueue contract, shared by its implementations: a RangeError before anything changes.
import type { JobSpec, TakeOptions } from "./job-queue.js";

/** A job to enqueue: its key, and `maxAttempts` when given. */
export function checkSpec(job: JobSpec): void {
  checkName("key", job.key);
  if (job.maxAttempts !== undefined) checkPositiveInteger("maxAttempts", job.maxAttempts);
}

/** The options of a take. */
export function checkTake(options: TakeOptions): void {
  checkPositiveInteger("max", options.max);
  checkPositiveInteger("leaseMs", options.leaseMs);
  if (options.waitMs !== undefined) checkNonNegative("waitMs", options.waitMs);
}

/** A queue name or job key: non-empty, without NUL. */
export function checkName(what: string, name: string): void {
  if (typeof name !== "string" || name === "" || name.includes("\0"))
    throw new RangeError(`${what} must be a non-empty string without NUL`);
}

/** A whole number of at least 1. */
export function checkPositiveInteger(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`${what} must be an integer >= 1, not ${n}`);
}

/** A finite number of at least 0. */
export function checkNonNegative(what: string, n: number): void {
  if (typeof n !== "number" || !(n >= 0) || !Number.isFinite(n))
    throw new RangeError(`${what} must be a finite number >= 0, not ${n}`);
}
