// The Stream contract suite: every Stream backend runs it (see stream.ts for the contract it checks).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isTributaryError } from "../../errors.js";
import {
  partitionOf,
  type RecordBatch,
  type StoredRecord,
  type Stream,
  type StreamRecord,
  type StreamSettings,
} from "./stream.js";

/** Cases a backend may skip, each with the reason it gives. */
export interface StreamContractOptions {
  readonly skip?: Partial<Record<"windowExpiry" | "reopen", string>>;
}

/** Makes a Stream whose state lives in `dir` (or, for a server backend, is keyed by it). */
export type MakeStream = (dir: string) => Stream | Promise<Stream>;

/**
 * Runs the Stream contract against one backend.
 * @example streamContract("sqlite", (dir) => new SqliteStream(join(dir, "stream.db")));
 */
export function streamContract(
  name: string,
  makeStream: MakeStream,
  options: StreamContractOptions = {},
): void {
  const skip = options.skip ?? {};

  describe(`Stream contract: ${name}`, () => {
    // One instance serves every case that needs no restart; each case has its own stream name,
    // which also keeps cases apart on backends whose state outlives the folder (a shared server).
    // Instances are costly to start on some backends (a worker thread, a server connection).
    let dir = "";
    let shared: Stream | undefined;
    const extra = new Set<Stream>();
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "trb-stream-"));
      shared = await makeStream(dir);
    });
    after(async () => {
      for (const s of extra) await s.close();
      await shared?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    /** The shared instance with a new stream opened on it. */
    async function fresh(
      settings: Partial<StreamSettings> = {},
    ): Promise<{ s: Stream; stream: string }> {
      const stream = uniqueName();
      await shared!.open(settingsFor(stream, settings));
      return { s: shared!, stream };
    }

    test("positions start at 1 and increase in append order, within and across calls", async () => {
      const { s, stream } = await fresh();
      assert.equal(await s.end(stream), 1, "an empty stream's next position is 1");
      const first = await s.append(stream, records("a", 3));
      const second = await s.append(stream, records("b", 2));
      const seqs = [...first, ...second].map((r) => r.seq);
      assert.deepEqual(seqs, [1, 2, 3, 4, 5]);
      assert.ok([...first, ...second].every((r) => !r.duplicate));
      assert.equal(await s.end(stream), 6);
      const read = await s.read(stream, 1, { max: 100 });
      assert.deepEqual(
        read.map((r) => r.id),
        ["a0", "a1", "a2", "b0", "b1"],
      );
      assert.deepEqual(
        read.map((r) => r.seq),
        seqs,
      );
    });

    test("records read back exactly as appended (id, time, data)", async () => {
      const { s, stream } = await fresh();
      const input: StreamRecord[] = [
        {
          id: "ü-1",
          time: Date.UTC(2001, 0, 1, 5, 30),
          data: JSON.stringify({ name: "Zoë ✈", n: 1 }),
        },
        { id: "x".repeat(200), time: 0, data: JSON.stringify({ big: "y".repeat(100_000) }) },
        { id: "neg", time: -86_400_000, data: "{}" },
        // Records are single-line JSON, but escaped breaks and U+2028/U+2029 (which JSON.stringify
        // leaves raw) are part of them.
        {
          id: "breaks",
          time: 1,
          data: JSON.stringify({ s: "line\nbreak\r\n", u: "\u2028\u2029", t: "\t" }),
        },
      ];
      await s.append(stream, input);
      const read = await s.read(stream, 1, { max: 10 });
      assert.equal(read.length, input.length);
      // Compared one by one so a failure does not print the 100 kB record.
      read.forEach((r, i) => {
        assert.equal(r.id, input[i]!.id, `id of record ${i}`);
        assert.equal(r.time, input[i]!.time, `time of record ${i}`);
        assert.ok(r.data === input[i]!.data, `data of record ${i} differs`);
      });
    });

    test("concurrent appends each keep their order and get distinct positions", async () => {
      const { s, stream } = await fresh();
      const calls = await Promise.all(
        ["p", "q", "r", "u"].map((p) => s.append(stream, records(p, 5))),
      );
      const all = calls.flat().map((r) => r.seq);
      assert.equal(new Set(all).size, 20, "positions are distinct");
      for (const c of calls) {
        const seqs = c.map((r) => r.seq);
        assert.deepEqual(
          seqs,
          [...seqs].sort((a, b) => a - b),
          "one call's records keep their order",
        );
      }
      const read = await s.read(stream, 1, { max: 100 });
      assert.equal(read.length, 20);
      for (const p of ["p", "q", "r", "u"]) {
        const ids = read.filter((r) => r.id.startsWith(p)).map((r) => r.id);
        assert.deepEqual(
          ids,
          [0, 1, 2, 3, 4].map((i) => `${p}${i}`),
        );
      }
    });

    test("read replays from any position, honours max, and removes nothing", async () => {
      const { s, stream } = await fresh();
      await s.append(stream, records("e", 10));
      for (const from of [1, 4, 10]) {
        const read = await s.read(stream, from, { max: 100 });
        assert.deepEqual(
          read.map((r) => r.seq),
          range(from, 10),
          `from ${from}`,
        );
      }
      assert.deepEqual(
        (await s.read(stream, 3, { max: 4 })).map((r) => r.seq),
        [3, 4, 5, 6],
      );
      assert.deepEqual(
        await s.read(stream, 11, { max: 100 }),
        [],
        "reading at the end returns nothing",
      );
      assert.deepEqual(
        await s.read(stream, 500, { max: 100 }),
        [],
        "reading past the end returns nothing",
      );
      assert.equal((await s.read(stream, 1, { max: 100 })).length, 10, "reads removed nothing");
    });

    test("a waiting read is woken by an append", async () => {
      const { s, stream } = await fresh();
      await s.append(stream, records("w", 1));
      const started = Date.now();
      const pending = s.read(stream, 2, { max: 10, waitMs: 10_000 });
      setTimeout(() => void s.append(stream, records("late", 2)), 50);
      const read = await pending;
      assert.ok(
        Date.now() - started < 5_000,
        "the read returned on the append, not at its timeout",
      );
      assert.ok(read.length >= 1);
      assert.equal(read[0]!.id, "late0");
      assert.equal(read[0]!.seq, 2);
    });

    test("a waiting read returns nothing when its wait runs out", async () => {
      const { s, stream } = await fresh();
      const started = Date.now();
      const read = await s.read(stream, 1, { max: 10, waitMs: 150 });
      const waited = Date.now() - started;
      assert.deepEqual(read, []);
      assert.ok(waited >= 100, `waited ${waited} ms of 150`);
      assert.ok(waited < 5_000, `waited ${waited} ms of 150`);
    });

    test("an abort signal ends a waiting read early", async () => {
      const { s, stream } = await fresh();
      const ac = new AbortController();
      const started = Date.now();
      const pending = s.read(stream, 1, { max: 10, waitMs: 10_000, signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      assert.deepEqual(await pending, []);
      assert.ok(Date.now() - started < 5_000, "the read returned on abort, not at its timeout");
    });

    test("a read with an already aborted signal does not wait", async () => {
      const { s, stream } = await fresh();
      const ac = new AbortController();
      ac.abort();
      const started = Date.now();
      assert.deepEqual(await s.read(stream, 1, { max: 10, waitMs: 10_000, signal: ac.signal }), []);
      assert.ok(Date.now() - started < 5_000, "an aborted signal ends the wait at once");
    });

    test("an id appended again within the window is not stored again", async () => {
      const { s, stream } = await fresh();
      const [a] = await s.append(stream, [rec("dup")]);
      await s.append(stream, [rec("other")]);
      const again = await s.append(stream, [rec("new"), rec("dup", '{"retry":true}')]);
      assert.deepEqual(
        again[1],
        { seq: a!.seq, duplicate: true },
        "the duplicate reports the stored copy",
      );
      assert.equal(again[0]!.duplicate, false);
      const read = await s.read(stream, 1, { max: 100 });
      assert.deepEqual(
        read.map((r) => r.id),
        ["dup", "other", "new"],
      );
      assert.equal(read[0]!.data, rec("dup").data, "the first copy is kept");
      assert.equal(await s.end(stream), 4, "a duplicate does not move the end");
    });

    test("duplicate ids inside one batch are stored once", async () => {
      const { s, stream } = await fresh();
      const res = await s.append(stream, [rec("x"), rec("y"), rec("x"), rec("x")]);
      assert.deepEqual(res, [
        { seq: 1, duplicate: false },
        { seq: 2, duplicate: false },
        { seq: 1, duplicate: true },
        { seq: 1, duplicate: true },
      ]);
      assert.deepEqual(
        (await s.read(stream, 1, { max: 10 })).map((r) => r.id),
        ["x", "y"],
      );
    });

    test("the same id in concurrent appends is stored once", async () => {
      const { s, stream } = await fresh();
      const results = await Promise.all([
        s.append(stream, [rec("same")]),
        s.append(stream, [rec("same")]),
      ]);
      const flat = results.flat();
      assert.equal(flat.filter((r) => !r.duplicate).length, 1);
      assert.equal(flat[0]!.seq, flat[1]!.seq);
      assert.equal((await s.read(stream, 1, { max: 10 })).length, 1);
    });

    test(
      "an id is stored again once the window has passed",
      { skip: skip.windowExpiry },
      async () => {
        const { s, stream } = await fresh({ dedupWindowMs: 100 });
        const [first] = await s.append(stream, [rec("late")]);
        await sleep(300);
        const [second] = await s.append(stream, [rec("late")]);
        assert.equal(second!.duplicate, false);
        assert.ok(second!.seq > first!.seq);
        assert.equal((await s.read(stream, 1, { max: 10 })).length, 2);
      },
    );

    test("open is idempotent and streams are independent", async () => {
      const { s, stream } = await fresh();
      await s.append(stream, records("i", 2));
      await s.open(settingsFor(stream));
      const other = `${stream}_b`;
      await s.open(settingsFor(other));
      assert.equal(await s.end(other), 1);
      assert.deepEqual(
        (await s.append(other, [rec("i0")]))[0],
        { seq: 1, duplicate: false },
        "ids are per stream",
      );
      assert.equal(await s.end(stream), 3);
      // Dead-letter streams are named `<stream>.dlq`.
      const dlq = `${stream}.dlq`;
      await s.open(settingsFor(dlq));
      await s.append(dlq, [rec("bad")]);
      assert.deepEqual(
        (await s.read(dlq, 1, { max: 10 })).map((r) => r.id),
        ["bad"],
      );
      assert.equal((await s.read(stream, 1, { max: 10 })).length, 2);
    });

    // Partitioned reads: a backend with one partition takes partition 0 as every record, so these
    // cases hold for it too; the long-poll case needs two partitions at least.
    test("partitionOf is 32-bit FNV-1a of the id's UTF-16 units, modulo the partitions", () => {
      const all = 2 ** 32;
      assert.equal(partitionOf("", all), 0x811c9dc5);
      assert.equal(partitionOf("a", all), 0xe40c292c);
      assert.equal(partitionOf("foobar", all), 0xbf9cf968);
      assert.equal(partitionOf("ü", all), 0x790b80bb, "UTF-16 units, not UTF-8 bytes");
      assert.equal(partitionOf("foobar", 3), 0xbf9cf968 % 3);
      assert.equal(partitionOf("anything", 1), 0);
      for (const bad of [0, -1, 1.5, NaN]) {
        assert.throws(() => partitionOf("a", bad), RangeError, `partitions ${bad}`);
      }
    });

    test("each partition reads exactly its records, in order, at their stream positions", async () => {
      const { s, stream } = await fresh();
      const n = s.capabilities.partitions;
      const input = records("q", 40);
      await s.append(stream, input.slice(0, 15));
      await s.append(stream, input.slice(15));
      const all = await s.read(stream, 1, { max: 1_000 });
      assert.equal(all.length, 40);
      const union: StoredRecord[] = [];
      for (let p = 0; p < n; p++) {
        const mine = all.filter((r) => partitionOf(r.id, n) === p);
        assert.ok(mine.length >= 4, `the input puts records in partition ${p} of ${n}`);
        const read = await s.read(stream, 1, { max: 1_000, partition: p });
        assert.deepEqual(read, mine, `partition ${p}: its records, at the unpartitioned positions`);
        union.push(...read);
        const mid = mine[Math.floor(mine.length / 2)]!.seq;
        for (const from of [mid, mid - 1, mid + 1]) {
          assert.deepEqual(
            await s.read(stream, from, { max: 1_000, partition: p }),
            mine.filter((r) => r.seq >= from),
            `partition ${p} from ${from}`,
          );
        }
        assert.deepEqual(
          await s.read(stream, 1, { max: 2, partition: p }),
          mine.slice(0, 2),
          `partition ${p} honours max`,
        );
        assert.deepEqual(
          await s.read(stream, 41, { max: 10, partition: p }),
          [],
          `partition ${p} read at the end`,
        );
      }
      assert.deepEqual(
        union.sort((a, b) => a.seq - b.seq),
        all,
        "the partitions together are the unpartitioned read",
      );
    });

    test("reads of different partitions from one position each get their own records", async () => {
      // Backends that keep a reader for the read that follows on must keep it per partition.
      const { s, stream } = await fresh();
      const n = s.capabilities.partitions;
      await s.append(stream, records("m", 30));
      const all = await s.read(stream, 1, { max: 1_000 });
      const of = (p: number, from: number): StoredRecord[] =>
        all.filter((r) => r.seq >= from && partitionOf(r.id, n) === p);
      const last = n - 1;
      for (let q = 0; q < n; q++) {
        // A read of the last partition ends at `from`; reads from `from` follow.
        const head = await s.read(stream, 1, { max: 2, partition: last });
        assert.deepEqual(head, of(last, 1).slice(0, 2));
        const from = head[1]!.seq + 1;
        assert.deepEqual(
          await s.read(stream, from, { max: 1_000, partition: q }),
          of(q, from),
          `partition ${q} from ${from}, after a read of partition ${last} ended there`,
        );
      }
      const head = await s.read(stream, 1, { max: 2, partition: last });
      const from = head[1]!.seq + 1;
      assert.deepEqual(
        await s.read(stream, from, { max: 1_000 }),
        all.filter((r) => r.seq >= from),
        "every partition, after a read of one partition ended there",
      );
      for (let q = 0; q < n; q++) {
        await s.read(stream, 1, { max: 3 });
        assert.deepEqual(
          await s.read(stream, 4, { max: 1_000, partition: q }),
          of(q, 4),
          `partition ${q}, after a read of every partition ended there`,
        );
      }
    });

    test("readBatches of a partition holds the same records as read of it", async () => {
      const { s, stream } = await fresh();
      const n = s.capabilities.partitions;
      await s.append(stream, records("b", 12));
      await s.append(stream, records("c", 12));
      for (let p = 0; p < n; p++) {
        for (const from of [1, 2, 14]) {
          const read = await s.read(stream, from, { max: 1_000, partition: p });
          assert.ok(read.length > 0, `partition ${p} has records from ${from}`);
          const batches = await s.readBatches(stream, from, { max: 1_000, partition: p });
          assert.deepEqual(
            unbatch(batches),
            read.map((r) => [r.seq, r.time, r.data]),
            `partition ${p} from ${from}`,
          );
          const one = await s.readBatches(stream, from, { max: 1, partition: p });
          assert.equal(one[0]?.first, read[0]!.seq, `partition ${p} from ${from}, max 1`);
        }
        assert.deepEqual(await s.readBatches(stream, 25, { max: 10, partition: p }), []);
      }
    });

    test("end of a partition is one past its last record, and 1 while it has none", async () => {
      const { s, stream } = await fresh();
      const n = s.capabilities.partitions;
      for (let p = 0; p < n; p++) assert.equal(await s.end(stream, p), 1, `empty, partition ${p}`);
      // With several partitions, the last one gets nothing.
      const empty = n > 1 ? n - 1 : -1;
      await s.append(
        stream,
        recordsIn(n, (p) => p !== empty, "n", 20),
      );
      const all = await s.read(stream, 1, { max: 1_000 });
      for (let p = 0; p < n; p++) {
        const mine = all.filter((r) => partitionOf(r.id, n) === p);
        assert.equal(mine.length === 0, p === empty);
        const end = mine.length === 0 ? 1 : mine[mine.length - 1]!.seq + 1;
        assert.equal(await s.end(stream, p), end, `partition ${p}`);
      }
      assert.equal(await s.end(stream), 21, "the stream's end is unchanged");
      await s.append(
        stream,
        recordsIn(n, (p) => p === 0, "o", 1),
      );
      assert.equal(await s.end(stream, 0), 22, "an append to partition 0 moves its end");
      if (n > 1) assert.equal(await s.end(stream, empty), 1, "and not that of another");
    });

    test("a waiting read of a partition wakes only for an append to that partition", async (t) => {
      const { s, stream } = await fresh();
      const n = s.capabilities.partitions;
      if (n < 2) return void t.skip("one partition: every append is to partition 0");
      const [other] = recordsIn(n, (p) => p !== 0, "other", 1);
      const [mine] = recordsIn(n, (p) => p === 0, "mine", 1);
      await s.append(
        stream,
        recordsIn(n, (p) => p !== 0, "before", 2),
      );
      const started = Date.now();
      const pending = s.read(stream, 3, { max: 10, waitMs: 10_000, partition: 0 });
      setTimeout(() => void s.append(stream, [other!]), 50);
      setTimeout(() => void s.append(stream, [mine!]), 500);
      const read = await pending;
      const waited = Date.now() - started;
      assert.deepEqual(
        read.map((r) => [r.seq, r.id]),
        [[4, mine!.id]],
        "the read returned the append to its partition, not the other one",
      );
      assert.ok(waited >= 400, `it waited for its partition's append (${waited} ms)`);
      assert.ok(waited < 5_000, "the read returned on the append, not at its timeout");
    });

    test("a partition outside 0 .. partitions - 1 is a RangeError", async () => {
      const { s, stream } = await fresh();
      const n = s.capabilities.partitions;
      await s.append(stream, records("r", 3));
      for (const bad of [-1, n, 1.5, NaN]) {
        const options = { max: 10, waitMs: 10_000, partition: bad };
        const started = Date.now();
        const isRange = (e: unknown): boolean => e instanceof RangeError;
        await assert.rejects(async () => s.read(stream, 1, options), isRange, `read, ${bad}`);
        await assert.rejects(
          async () => s.readBatches(stream, 1, options),
          isRange,
          `readBatches, ${bad}`,
        );
        await assert.rejects(async () => s.end(stream, bad), isRange, `end, ${bad}`);
        assert.ok(Date.now() - started < 5_000, "a bad partition does not wait");
      }
      assert.deepEqual(
        (await s.read(stream, 1, { max: 10, partition: partitionOf("r0", n) }))[0]?.id,
        "r0",
        "a good partition still reads",
      );
    });

    // Retention may delete at a coarser grain than one record (whole append calls, segments), so
    // these cases check what must hold: nothing a consumer still needs or younger than retainMs is
    // deleted, trim's count matches what disappeared, and what everyone passed long ago goes.
    test("trim deletes only what every registered consumer passed", async () => {
      const { s, stream } = await fresh({ retainMs: 1_000 });
      await s.register(stream, "a");
      await s.register(stream, "b");
      for (let i = 0; i < 6; i++) await s.append(stream, [rec(`t${i}`)]);
      await s.append(stream, records("batch", 3));
      const later = Date.now() + 60_000;
      assert.equal(
        await trimChecked(s, stream, later, 1),
        0,
        "consumers that passed nothing hold everything",
      );
      await s.commit(stream, "a", 5);
      await s.commit(stream, "b", 3);
      await trimChecked(s, stream, later, 3);
      await s.commit(stream, "b", 10);
      await trimChecked(s, stream, later, 5);
      await s.commit(stream, "a", 8);
      await trimChecked(s, stream, later, 8);
      await s.commit(stream, "a", 10);
      await trimChecked(s, stream, later, 10);
      assert.deepEqual(
        await s.read(stream, 1, { max: 100 }),
        [],
        "what every consumer passed long ago is deleted",
      );
      assert.equal(await s.end(stream), 10);
    });

    test("trim keeps records younger than retainMs", async () => {
      const { s, stream } = await fresh({ retainMs: 3_600_000 });
      await s.register(stream, "a");
      await s.append(stream, records("y", 3));
      await s.append(stream, records("z", 1));
      await s.commit(stream, "a", 5);
      assert.equal(await s.trim(stream, Date.now()), 0);
      assert.equal((await s.read(stream, 1, { max: 10 })).length, 4);
      assert.equal(await trimChecked(s, stream, Date.now() + 3_600_000 + 60_000, 5), 4);
    });

    test("register is idempotent and a commit never moves a consumer back", async () => {
      const { s, stream } = await fresh({ retainMs: 1_000 });
      await s.register(stream, "a");
      await s.append(stream, records("k", 3));
      await s.append(stream, records("l", 2));
      await s.commit(stream, "a", 6);
      await s.register(stream, "a");
      await s.commit(stream, "a", 2);
      assert.equal(
        await trimChecked(s, stream, Date.now() + 60_000, 6),
        5,
        "the consumer is still at 6",
      );
      await s.register(stream, "late");
      await s.append(stream, records("m", 1));
      await s.commit(stream, "a", 7);
      assert.equal(
        await trimChecked(s, stream, Date.now() + 60_000, 6),
        0,
        "a new consumer at the start holds the rest",
      );
    });

    test(
      "an append that resolved is visible to a new instance without a clean close",
      { skip: skip.reopen },
      async () => {
        const { s, stream } = await fresh();
        const res = await s.append(stream, records("d", 5));
        assert.equal(res.length, 5);
        // The first instance is left open, as a crashed process would leave it.
        const other = await makeStream(dir);
        extra.add(other);
        await other.open(settingsFor(stream));
        const read = await other.read(stream, 1, { max: 10 });
        assert.deepEqual(
          read.map((r) => r.id),
          ["d0", "d1", "d2", "d3", "d4"],
        );
        assert.deepEqual(
          read.map((r) => r.seq),
          res.map((r) => r.seq),
        );
      },
    );
  });

  // Restart cases run in order on one folder: each instance is closed before the next one opens.
  describe(`Stream contract: ${name}, across restarts`, { skip: skip.reopen }, () => {
    let dir = "";
    const live = new Set<Stream>();
    const stream = uniqueName();
    const trimmed = uniqueName();
    let current: Stream | undefined;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "trb-stream-"));
    });
    after(async () => {
      for (const s of live) await s.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const restart = async (): Promise<Stream> => {
      if (current && live.delete(current)) await current.close();
      current = await makeStream(dir);
      live.add(current);
      await current.open(settingsFor(stream));
      await current.open(settingsFor(trimmed, { retainMs: 1 }));
      return current;
    };

    test("close waits for appends in flight; append after close rejects with TRB_STREAM_CLOSED", async () => {
      const s = await restart();
      await s.register(trimmed, "a");
      await s.append(trimmed, records("g", 3));
      await s.commit(trimmed, "a", 4);
      const pending = s.append(stream, records("c", 4));
      live.delete(s);
      await s.close();
      assert.deepEqual(
        (await pending).map((r) => r.seq),
        [1, 2, 3, 4],
      );
      await assert.rejects(
        async () => s.append(stream, [rec("z")]),
        (e: unknown) => isTributaryError(e, "TRB_STREAM_CLOSED"),
      );
    });

    test("a reopened stream keeps its records, its end and the dedup ids of its window", async () => {
      const s = await restart();
      assert.equal(await s.end(stream), 5);
      assert.deepEqual(
        (await s.read(stream, 1, { max: 10 })).map((r) => r.id),
        ["c0", "c1", "c2", "c3"],
      );
      const again = await s.append(stream, [rec("c1"), rec("fresh")]);
      assert.deepEqual(again, [
        { seq: 2, duplicate: true },
        { seq: 5, duplicate: false },
      ]);
    });

    test("positions never go back after trim, even with every record deleted and a reopen", async () => {
      let s = await restart();
      assert.equal(await trimChecked(s, trimmed, Date.now() + 60_000, 4), 3);
      assert.deepEqual(await s.read(trimmed, 1, { max: 10 }), []);
      assert.equal(await s.end(trimmed), 4);
      s = await restart();
      assert.equal(await s.end(trimmed), 4, "the end survives a reopen of an empty log");
      const [r] = await s.append(trimmed, [rec("after")]);
      assert.equal(r!.seq, 4);
      assert.deepEqual(
        (await s.read(trimmed, 1, { max: 10 })).map((x) => x.seq),
        [4],
      );
      assert.deepEqual(
        (await s.read(stream, 1, { max: 10 })).map((x) => x.id),
        ["c0", "c1", "c2", "c3", "fresh"],
      );
    });
  });
}

/**
 * Trims and checks the result: every record at or after `keepFrom` is still there, what remains is
 * a contiguous run up to the end, and the count returned is what disappeared. Returns that count.
 */
async function trimChecked(
  s: Stream,
  stream: string,
  now: number,
  keepFrom: number,
): Promise<number> {
  const before = await s.read(stream, 1, { max: 1_000_000 });
  const deleted = await s.trim(stream, now);
  const after = await s.read(stream, 1, { max: 1_000_000 });
  const end = await s.end(stream);
  const seqs = after.map((r) => r.seq);
  const start = seqs[0] ?? end;
  assert.deepEqual(seqs, range(start, end - 1), "what remains is a contiguous run up to the end");
  assert.ok(
    start <= keepFrom,
    `records from ${keepFrom} on are kept (the log now starts at ${start})`,
  );
  assert.equal(deleted, before.length - after.length, "trim returns the number of records deleted");
  return deleted;
}

/** A stream name no other case (or earlier run against a shared server) uses. */
function uniqueName(): string {
  return `s_${randomBytes(5).toString("hex")}`;
}

function settingsFor(name: string, overrides: Partial<StreamSettings> = {}): StreamSettings {
  return { name, dedupWindowMs: 600_000, dedupMaxIds: 10_000, retainMs: 3_600_000, ...overrides };
}

function rec(id: string, data = `{"id":${JSON.stringify(id)}}`): StreamRecord {
  return { id, time: Date.UTC(2001, 0, 1), data };
}

function records(prefix: string, n: number): StreamRecord[] {
  return Array.from({ length: n }, (_, i) => rec(`${prefix}${i}`));
}

/** `n` records, `<prefix><i>` for the first ids whose partition of `partitions` passes `keep`. */
function recordsIn(
  partitions: number,
  keep: (partition: number) => boolean,
  prefix: string,
  n: number,
): StreamRecord[] {
  const out: StreamRecord[] = [];
  for (let i = 0; out.length < n; i++) {
    if (keep(partitionOf(`${prefix}${i}`, partitions))) out.push(rec(`${prefix}${i}`));
  }
  return out;
}

/** Blocks as `[seq, time, data]` per record, checking each block's counts. */
function unbatch(batches: readonly RecordBatch[]): [number, number, string][] {
  return batches.flatMap((b) => {
    const data = b.data.split("\n");
    assert.equal(b.times.length, b.count, "one time per record of a block");
    assert.equal(data.length, b.count, "one line per record of a block");
    return data.map((d, i): [number, number, string] => [b.first + i, b.times[i]!, d]);
  });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
