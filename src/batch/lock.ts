// One batch engine per project at a time: a lock file naming the process that holds it.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { TributaryError } from "../errors.js";

/** What a lock file says about its holder. */
export interface LockHolder {
  readonly pid: number;
  /** What runs: `tributary up (http://…)`, `tributary batch backfill`. */
  readonly what: string;
}

/**
 * Takes the batch lock at `path`, or throws TRB_BATCH_BUSY naming the live process holding it.
 * A lock left by a process that died is taken over. Returns the release function.
 */
export function acquireBatchLock(path: string, what: string): () => void {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, JSON.stringify({ pid: process.pid, what } satisfies LockHolder));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const holder = readHolder(path);
      if (holder && holder.pid !== process.pid && alive(holder.pid)) {
        throw new TributaryError(
          "TRB_BATCH_BUSY",
          `${holder.what} (pid ${holder.pid}) runs this project's batch layer; use its API (POST /v1/batch/runs) or stop it first.`,
        );
      }
      // The holder is gone (crash, kill -9): the lock is stale.
      rmSync(path, { force: true });
    }
  }
  throw new TributaryError("TRB_BATCH_BUSY", `Could not take the batch lock ${path}.`);
}

function readHolder(path: string): LockHolder | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as LockHolder;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
