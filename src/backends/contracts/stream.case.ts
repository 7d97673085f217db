// The Stream contract suite: every Stream backend runs it (see stream.ts for the contract it checks).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { isTributaryError } from "../../errors.js";
import type { Stream, StreamRecord, StreamSettings } from "./stream.js";

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
export function streamContract(name: string, makeStream: MakeStream, options: StreamContractOptions = {}): void {
  const skip = options.skip ?? {};

  /** A temp folder, streams made in it, and their cleanup when the test ends. */
  async function setup(t: TestContext): Promise<Fixture> {
    const dir = mkdtempSync(join(tmpdir(), "trb-stream-"));
    const live = new Set<Stream>();
    t.after(async () => {
      for (const s of live) await s.close();
      rmSync(dir, { recursive: true, force: true });
    });
    // Unique names keep tests apart on backends whose state outlives the folder (a shared server).
    const stream = `s_${randomBytes(5).toString("hex")}`;
    const fixture: Fixture = {
      dir,
      stream,
      make: async (settings = {}) => {
        const s = await makeStream(dir);
        live.add(s);
        await s.open(settingsFor(stream, settings));
        return s;
      },
      close: async (s) => {
        live.delete(s);
        await s.close();
      },
    };
    return fixture;
  }

  describe(`Stream contract: ${name}`, () => {
    test("positions start at 1 and increase in append order, within and across calls", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      assert.equal(await s.end(f.stream), 1, "an empty stream's next position is 1");
      const first = await s.append(f.stream, records("a", 3));
      const second = await s.append(f.stream, records("b", 2));
      const seqs = [...first, ...second].map((r) => r.seq);
      assert.deepEqual(seqs, [1, 2, 3, 4, 5]);
      assert.ok([...first, ...second].every((r) => !r.duplicate));
      assert.equal(await s.end(f.stream), 6);
      const read = await s.read(f.stream, 1, { max: 100 });
      assert.deepEqual(read.map((r) => r.id), ["a0", "a1", "a2", "b0", "b1"]);
      assert.deepEqual(read.map((r) => r.seq), seqs);
    });

    test("records read back exactly as appended (id, time, data)", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      const input: StreamRecord[] = [
        { id: "ü-1", time: Date.UTC(2001, 0, 1, 5, 30), data: JSON.stringify({ name: "Zoë ✈", n: 1 }) },
        { id: "x".repeat(200), time: 0, data: JSON.stringify({ big: "y".repeat(100_000) }) },
        { id: "neg", time: -86_400_000, data: "{}" },
        // JSON may hold whitespace newlines; the log must not depend on one-line records.
        { id: "pretty", time: 1, data: JSON.stringify({ a: [1, 2], s: "line\nbreak" }, null, 2) },
      ];
      await s.append(f.stream, input);
      const read = await s.read(f.stream, 1, { max: 10 });
      assert.deepEqual(
        read.map(({ id, time, data }) => ({ id, time, data })),
        input,
      );
    });

    test("concurrent appends each keep their order and get distinct positions", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      const calls = await Promise.all(["p", "q", "r", "u"].map((p) => s.append(f.stream, records(p, 5))));
      const all = calls.flat().map((r) => r.seq);
      assert.equal(new Set(all).size, 20, "positions are distinct");
      for (const c of calls) {
        const seqs = c.map((r) => r.seq);
        assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "one call's records keep their order");
      }
      const read = await s.read(f.stream, 1, { max: 100 });
      assert.equal(read.length, 20);
      for (const p of ["p", "q", "r", "u"]) {
        const ids = read.filter((r) => r.id.startsWith(p)).map((r) => r.id);
        assert.deepEqual(ids, [0, 1, 2, 3, 4].map((i) => `${p}${i}`));
      }
    });

    test("read replays from any position, honours max, and removes nothing", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      await s.append(f.stream, records("e", 10));
      for (const from of [1, 4, 10]) {
        const read = await s.read(f.stream, from, { max: 100 });
        assert.deepEqual(
          read.map((r) => r.seq),
          range(from, 10),
          `from ${from}`,
        );
      }
      assert.deepEqual(
        (await s.read(f.stream, 3, { max: 4 })).map((r) => r.seq),
        [3, 4, 5, 6],
      );
      assert.deepEqual(await s.read(f.stream, 11, { max: 100 }), [], "reading at the end returns nothing");
      assert.deepEqual(await s.read(f.stream, 500, { max: 100 }), [], "reading past the end returns nothing");
      assert.equal((await s.read(f.stream, 1, { max: 100 })).length, 10, "reads removed nothing");
    });

    test("a waiting read is woken by an append", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      await s.append(f.stream, records("w", 1));
      const started = Date.now();
      const pending = s.read(f.stream, 2, { max: 10, waitMs: 10_000 });
      setTimeout(() => void s.append(f.stream, records("late", 2)), 50);
      const read = await pending;
      assert.ok(Date.now() - started < 5_000, "the read returned on the append, not at its timeout");
      assert.ok(read.length >= 1);
      assert.equal(read[0]!.id, "late0");
      assert.equal(read[0]!.seq, 2);
    });

    test("a waiting read returns nothing when its wait runs out", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      const started = Date.now();
      const read = await s.read(f.stream, 1, { max: 10, waitMs: 150 });
      const waited = Date.now() - started;
      assert.deepEqual(read, []);
      assert.ok(waited >= 100, `waited ${waited} ms of 150`);
      assert.ok(waited < 5_000, `waited ${waited} ms of 150`);
    });

    test("an abort signal ends a waiting read early", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      const ac = new AbortController();
      const started = Date.now();
      const pending = s.read(f.stream, 1, { max: 10, waitMs: 10_000, signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      assert.deepEqual(await pending, []);
      assert.ok(Date.now() - started < 5_000, "the read returned on abort, not at its timeout");
    });

    test("a read with an already aborted signal does not wait", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      const ac = new AbortController();
      ac.abort();
      const started = Date.now();
      assert.deepEqual(await s.read(f.stream, 1, { max: 10, waitMs: 10_000, signal: ac.signal }), []);
      assert.ok(Date.now() - started < 5_000, "an aborted signal ends the wait at once");
    });

    test("an id appended again within the window is not stored again", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      const [a] = await s.append(f.stream, [rec("dup")]);
      await s.append(f.stream, [rec("other")]);
      const again = await s.append(f.stream, [rec("new"), rec("dup", '{"retry":true}')]);
      assert.deepEqual(again[1], { seq: a!.seq, duplicate: true }, "the duplicate reports the stored copy");
      assert.equal(again[0]!.duplicate, false);
      const read = await s.read(f.stream, 1, { max: 100 });
      assert.deepEqual(read.map((r) => r.id), ["dup", "other", "new"]);
      assert.equal(read[0]!.data, rec("dup").data, "the first copy is kept");
      assert.equal(await s.end(f.stream), 4, "a duplicate does not move the end");
    });

    test("duplicate ids inside one batch are stored once", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      const res = await s.append(f.stream, [rec("x"), rec("y"), rec("x"), rec("x")]);
      assert.deepEqual(res, [
        { seq: 1, duplicate: false },
        { seq: 2, duplicate: false },
        { seq: 1, duplicate: true },
        { seq: 1, duplicate: true },
      ]);
      assert.deepEqual((await s.read(f.stream, 1, { max: 10 })).map((r) => r.id), ["x", "y"]);
    });

    test("the same id in concurrent appends is stored once", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      const results = await Promise.all([s.append(f.stream, [rec("same")]), s.append(f.stream, [rec("same")])]);
      const flat = results.flat();
      assert.equal(flat.filter((r) => !r.duplicate).length, 1);
      assert.equal(flat[0]!.seq, flat[1]!.seq);
      assert.equal((await s.read(f.stream, 1, { max: 10 })).length, 1);
    });

    test("dedup ids survive a close and reopen", { skip: skip.reopen }, async (t) => {
      const f = await setup(t);
      const s1 = await f.make();
      const first = await s1.append(f.stream, records("r", 3));
      await f.close(s1);
      const s2 = await f.make();
      const again = await s2.append(f.stream, [rec("r1"), rec("fresh")]);
      assert.deepEqual(again[0], { seq: first[1]!.seq, duplicate: true });
      assert.deepEqual(again[1], { seq: 4, duplicate: false });
      assert.deepEqual((await s2.read(f.stream, 1, { max: 10 })).map((r) => r.id), ["r0", "r1", "r2", "fresh"]);
    });

    test("an id is stored again once the window has passed", { skip: skip.windowExpiry }, async (t) => {
      const f = await setup(t);
      const s = await f.make({ dedupWindowMs: 100 });
      const [first] = await s.append(f.stream, [rec("late")]);
      await sleep(300);
      const [second] = await s.append(f.stream, [rec("late")]);
      assert.equal(second!.duplicate, false);
      assert.ok(second!.seq > first!.seq);
      assert.equal((await s.read(f.stream, 1, { max: 10 })).length, 2);
    });

    test("open is idempotent and streams are independent", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      await s.append(f.stream, records("i", 2));
      await s.open(settingsFor(f.stream));
      const other = `${f.stream}_b`;
      await s.open(settingsFor(other));
      assert.equal(await s.end(other), 1);
      assert.deepEqual((await s.append(other, [rec("i0")]))[0], { seq: 1, duplicate: false }, "ids are per stream");
      assert.equal(await s.end(f.stream), 3);
      // Dead-letter streams are named `<stream>.dlq`.
      const dlq = `${f.stream}.dlq`;
      await s.open(settingsFor(dlq));
      await s.append(dlq, [rec("bad")]);
      assert.deepEqual((await s.read(dlq, 1, { max: 10 })).map((r) => r.id), ["bad"]);
      assert.equal((await s.read(f.stream, 1, { max: 10 })).length, 2);
    });

    // Retention may delete at a coarser grain than one record (whole append calls, segments), so
    // these cases check what must hold: nothing a consumer still needs or younger than retainMs is
    // deleted, trim's count matches what disappeared, and what everyone passed long ago goes.
    test("trim deletes only what every registered consumer passed", async (t) => {
      const f = await setup(t);
      const s = await f.make({ retainMs: 1_000 });
      await s.register(f.stream, "a");
      await s.register(f.stream, "b");
      for (let i = 0; i < 6; i++) await s.append(f.stream, [rec(`t${i}`)]);
      await s.append(f.stream, records("batch", 3));
      const later = Date.now() + 60_000;
      assert.equal(await trimChecked(s, f.stream, later, 1), 0, "consumers that passed nothing hold everything");
      await s.commit(f.stream, "a", 5);
      await s.commit(f.stream, "b", 3);
      await trimChecked(s, f.stream, later, 3);
      await s.commit(f.stream, "b", 10);
      await trimChecked(s, f.stream, later, 5);
      await s.commit(f.stream, "a", 8);
      await trimChecked(s, f.stream, later, 8);
      await s.commit(f.stream, "a", 10);
      await trimChecked(s, f.stream, later, 10);
      assert.deepEqual(await s.read(f.stream, 1, { max: 100 }), [], "what every consumer passed long ago is deleted");
      assert.equal(await s.end(f.stream), 10);
    });

    test("trim keeps records younger than retainMs", async (t) => {
      const f = await setup(t);
      const s = await f.make({ retainMs: 3_600_000 });
      await s.register(f.stream, "a");
      await s.append(f.stream, records("y", 3));
      await s.append(f.stream, records("z", 1));
      await s.commit(f.stream, "a", 5);
      assert.equal(await s.trim(f.stream, Date.now()), 0);
      assert.equal((await s.read(f.stream, 1, { max: 10 })).length, 4);
      assert.equal(await trimChecked(s, f.stream, Date.now() + 3_600_000 + 60_000, 5), 4);
    });

    test("register is idempotent and a commit never moves a consumer back", async (t) => {
      const f = await setup(t);
      const s = await f.make({ retainMs: 1_000 });
      await s.register(f.stream, "a");
      await s.append(f.stream, records("k", 3));
      await s.append(f.stream, records("l", 2));
      await s.commit(f.stream, "a", 6);
      await s.register(f.stream, "a");
      await s.commit(f.stream, "a", 2);
      assert.equal(await trimChecked(s, f.stream, Date.now() + 60_000, 6), 5, "the consumer is still at 6");
      await s.register(f.stream, "late");
      await s.append(f.stream, records("m", 1));
      await s.commit(f.stream, "a", 7);
      assert.equal(await trimChecked(s, f.stream, Date.now() + 60_000, 1), 0, "a new consumer at the start holds the rest");
    });

    test("positions never go back after trim, even with every record deleted and a reopen", { skip: skip.reopen }, async (t) => {
      const f = await setup(t);
      const s1 = await f.make({ retainMs: 1 });
      await s1.register(f.stream, "a");
      await s1.append(f.stream, records("g", 3));
      await s1.commit(f.stream, "a", 4);
      assert.equal(await trimChecked(s1, f.stream, Date.now() + 60_000, 4), 3);
      assert.equal(await s1.end(f.stream), 4);
      await f.close(s1);
      const s2 = await f.make({ retainMs: 1 });
      assert.equal(await s2.end(f.stream), 4, "the end survives a reopen of an empty log");
      const [r] = await s2.append(f.stream, [rec("after")]);
      assert.equal(r!.seq, 4);
      assert.deepEqual((await s2.read(f.stream, 1, { max: 10 })).map((x) => x.seq), [4]);
    });

    test("append after close rejects with TRB_STREAM_CLOSED", async (t) => {
      const f = await setup(t);
      const s = await f.make();
      await f.close(s);
      await assert.rejects(
        async () => s.append(f.stream, [rec("z")]),
        (e: unknown) => isTributaryError(e, "TRB_STREAM_CLOSED"),
      );
    });

    test("close waits for appends in flight", { skip: skip.reopen }, async (t) => {
      const f = await setup(t);
      const s1 = await f.make();
      const pending = s1.append(f.stream, records("c", 4));
      await f.close(s1);
      const res = await pending;
      assert.deepEqual(res.map((r) => r.seq), [1, 2, 3, 4]);
      const s2 = await f.make();
      assert.deepEqual((await s2.read(f.stream, 1, { max: 10 })).map((r) => r.id), ["c0", "c1", "c2", "c3"]);
    });

    test("an append that resolved is visible to a new instance without a clean close", { skip: skip.reopen }, async (t) => {
      const f = await setup(t);
      const s1 = await f.make();
      const res = await s1.append(f.stream, records("d", 5));
      assert.equal(res.length, 5);
      // The first instance is left open, as a crashed process would leave it.
      const s2 = await f.make();
      const read = await s2.read(f.stream, 1, { max: 10 });
      assert.deepEqual(read.map((r) => r.id), ["d0", "d1", "d2", "d3", "d4"]);
      assert.deepEqual(read.map((r) => r.seq), res.map((r) => r.seq));
    });
  });
}

interface Fixture {
  readonly dir: string;
  /** A stream name unique to the test. */
  readonly stream: string;
  /** A new backend instance over the test's folder, with the test stream opened. */
  make(settings?: Partial<StreamSettings>): Promise<Stream>;
  /** Closes an instance the test is done with. */
  close(s: Stream): Promise<void>;
}

/**
 * Trims and checks the result: every record at or after `keepFrom` is still there, what remains is
 * a contiguous run up to the end, and the count returned is what disappeared. Returns that count.
 */
async function trimChecked(s: Stream, stream: string, now: number, keepFrom: number): Promise<number> {
  const before = await s.read(stream, 1, { max: 1_000_000 });
  const deleted = await s.trim(stream, now);
  const after = await s.read(stream, 1, { max: 1_000_000 });
  const end = await s.end(stream);
  const seqs = after.map((r) => r.seq);
  const start = seqs[0] ?? end;
  assert.deepEqual(seqs, range(start, end - 1), "what remains is a contiguous run up to the end");
  assert.ok(start <= keepFrom, `records from ${keepFrom} on are kept (the log now starts at ${start})`);
  assert.equal(deleted, before.length - after.length, "trim returns the number of records deleted");
  return deleted;
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

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
