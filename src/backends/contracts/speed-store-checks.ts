// Argument checks of the SpeedStore contract, shared by its implementations: a RangeError before anything is written.
import type { ShardCheckpoint } from "./speed-store.js";

/** A UTF-16 surrogate without its pair: not encodable as UTF-8, so it would not round-trip. */
const LONE = /\p{Surrogate}/u;

/** The argument checks of the SpeedStore contract: RangeError before anything is written. */
export function checkSave(
  view: string,
  shard: string,
  expected: number | null,
  c: ShardCheckpoint,
): void {
  checkName("view", view);
  checkName("shard", shard);
  if (expected !== null) checkCount("expected", expected);
  checkCount("position", c.position);
  checkCount("late", c.late);
  if (c.maxTime !== null && !Number.isSafeInteger(c.maxTime)) {
    throw new RangeError(`maxTime must be a safe integer or null, not ${c.maxTime}`);
  }
  if (typeof c.viewHash !== "string" || c.viewHash.includes("\0") || LONE.test(c.viewHash)) {
    throw new RangeError("viewHash must be well-formed text without NUL");
  }
  if (!(c.state instanceof Uint8Array)) throw new RangeError("state must be a Uint8Array");
}

/** A view or shard name: non-empty, well-formed text without NUL. */
export function checkName(what: string, name: string): void {
  if (typeof name !== "string" || name === "" || name.includes("\0") || LONE.test(name)) {
    throw new RangeError(`${what} must be non-empty, well-formed text without NUL`);
  }
}

/** A non-negative safe integer. */
export function checkCount(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, not ${n}`);
  }
}
