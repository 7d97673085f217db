// Tests of sharing partitions among workers through the job queue (in-process queue, many holders).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { pino } from "pino";
import { LocalJobQueue } from "../backends/local/job-queue.js";
import { PartitionLeases } from "./partition-leases.js";

const log = pino({ level: "silent" });

/** Every acquire and release of every worker, checked: a partition is worked on by one at a time. */
class Ledger {
  readonly owner = new Map<number, string>();
  readonly events: string[] = [];

  worker(queue: LocalJobQueue, name: string, partitions: number, role = "land"): PartitionLeases {
    return new PartitionLeases({
      queue,
      role,
      partitions,
      log,
      leaseMs: 600,
      acquire: async (p) => {
        const current = this.owner.get(p);
        assert.equal(current, undefined, `${name} acquired p${p} while ${current} works on it`);
        this.owner.set(p, name);
        this.events.push(`${name}+${p}`);
      },
      release: async (p) => {
        assert.equal(this.owner.get(p), name, `${name} released p${p} it did not hold`);
        this.owner.delete(p);
        this.events.push(`${name}-${p}`);
      },
    });
  }
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("PartitionLeases", () => {
  test("workers started together split the partitions, each held by one", async () => {
    const queue = new LocalJobQueue();
    const ledger = new Ledger();
    const a = ledger.worker(queue, "a", 4);
    const b = ledger.worker(queue, "b", 4);
    a.start();
    b.start();
    try {
      await until(
        "every partition is held and both workers work",
        () => ledger.owner.size === 4 && a.held.length > 0 && b.held.length > 0,
      );
      assert.deepEqual([...a.held, ...b.held].sort(), [0, 1, 2, 3]);
      assert.deepEqual(
        a.held.filter((p) => b.held.includes(p)),
        [],
      );
    } finally {
      await a.stop();
      await b.stop();
      await queue.close();
    }
    assert.equal(ledger.owner.size, 0, "stop releases every partition");
  });

  test("a worker added later gets a share; a stopped worker's partitions move to the others", async () => {
    const queue = new LocalJobQueue();
    const ledger = new Ledger();
    const a = ledger.worker(queue, "a", 3);
    a.start();
    const b = ledger.worker(queue, "b", 3);
    try {
      await until("a holds everything", () => a.held.length === 3);
      b.start();
      await until("b got a partition", () => b.held.length > 0);
      assert.equal(a.held.length + b.held.length, 3);
      assert.ok(
        ledger.events.some((e) => e.startsWith("a-")),
        "a handed one back",
      );
      await a.stop();
      await until("b holds everything", () => b.held.length === 3);
      assert.deepEqual(b.held, [0, 1, 2]);
    } finally {
      await a.stop();
      await b.stop();
      await queue.close();
    }
  });

  test("a lease that ends without heartbeats is lost, and the holder stops its work", async () => {
    const queue = new LocalJobQueue();
    const lost: number[] = [];
    // A worker whose acquire hangs stands for a process that stopped responding: it sends no
    // heartbeat, its lease ends, and the partition goes to the other worker.
    let unblock: () => void = () => undefined;
    const hung = new Promise<void>((r) => (unblock = r));
    const stuck = new PartitionLeases({
      queue,
      role: "speed",
      partitions: 1,
      log,
      leaseMs: 300,
      acquire: () => hung,
      release: async (p, isLost) => {
        if (isLost) lost.push(p);
      },
    });
    const ledger = new Ledger();
    const other = ledger.worker(queue, "other", 1, "speed");
    stuck.start();
    try {
      await until("the stuck worker took the partition", () => stuck.held.length === 1);
      other.start();
      await until("the other worker holds it", () => other.held.length === 1, 30_000);
      unblock();
      await until("the stuck worker notices its lost lease", () => lost.length === 1);
      assert.deepEqual(stuck.held, []);
      assert.deepEqual(other.held, [0], "the new holder keeps it");
    } finally {
      unblock();
      await other.stop();
      await stuck.stop();
      await queue.close();
    }
  });
});
