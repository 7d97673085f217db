// The SpeedStore contract suite: every SpeedStore backend runs it (see speed-store.ts for the contract it checks).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isTributaryError } from "../../errors.js";
import type { ShardCheckpoint, SpeedStore, StoredShardCheckpoint } from "./speed-store.js";

/** Cases a backend may skip, each with the reason it gives. */
export interface SpeedStoreContractOptions {
  readonly skip?: Partial<Record<"restart", string>>;
}

/**
 * Makes a SpeedStore whose state lives in `dir` (or, for a server backend, is keyed by it): two
 * calls with one `dir` are two instances over the same checkpoints, as two processes would be.
 */
export type MakeSpeedStore = (dir: string) => SpeedStore | Promise<SpeedStore>;

/** Rounds of the race between two writers of one shard. */
const RACE_ROUNDS = 50;

/**
 * Runs the SpeedStore contract against one backend.
 * @example speedStoreContract("memory", () => new MemorySpeedStore(), { skip: { restart: "..." } });
 */
export function speedStoreContract(
  name: string,
  makeStore: MakeSpeedStore,
  options: SpeedStoreContractOptions = {},
): void {
  const skip = options.skip ?? {};

  describe(`SpeedStore contract: ${name}`, () => {
    // One instance serves every case; each case uses views of its own, which also keeps cases
    // apart on backends whose state outlives the folder (a shared server).
    let dir = "";
    let shared: SpeedStore | undefined;
    const extra = new Set<SpeedStore>();
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "trb-speed-"));
      shared = await makeStore(dir);
    });
    after(async () => {
      for (const s of extra) await s.close();
      await shared?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    /** Another instance over the same storage (closed at the end unless the case closes it). */
    async function another(): Promise<SpeedStore> {
      const s = await makeStore(dir);
      extra.add(s);
      return s;
    }

    test("a first save needs expected null; loadShard and load return it", async () => {
      const s = shared!;
      const view = uniqueView();
      assert.equal(await s.version(view), 0, "a view never saved is at version 0");
      assert.deepEqual(await s.load(view), []);
      assert.equal(await s.loadShard(view, "p0"), undefined);

      await assertConflict(s.save(view, "p0", 1, checkpoint(5)), "nothing is stored at 1");
      assert.equal(await s.loadShard(view, "p0"), undefined, "a conflict stores nothing");
      assert.equal(await s.version(view), 0, "a conflict does not move the version");

      const first = checkpoint(5, { state: bytes(1, 100) });
      await s.save(view, "p0", null, first);
      const stored = await s.loadShard(view, "p0");
      assertCheckpoint(stored, "p0", first);
      assert.equal(new Date(stored!.savedAt).toISOString(), stored!.savedAt, "savedAt is ISO");
      const all = await s.load(view);
      assert.equal(all.length, 1);
      assertCheckpoint(all[0], "p0", first);
      assert.ok((await s.version(view)) > 0);

      await assertConflict(s.save(view, "p0", null, checkpoint(9)), "p0 is stored now");
      assertCheckpoint(await s.loadShard(view, "p0"), "p0", first);
    });

    test("states and fields round-trip exactly: empty, every byte value, 1 MiB, edge numbers", async () => {
      const s = shared!;
      const view = uniqueView();
      const all = new Uint8Array(512).map((_, i) => i % 256);
      const cases: [string, ShardCheckpoint][] = [
        ["empty", checkpoint(1, { state: new Uint8Array(0) })],
        ["bytes", checkpoint(2, { state: all })],
        ["big", checkpoint(3, { state: randomBytes(1024 * 1024) })],
        [
          "edges",
          checkpoint(Number.MAX_SAFE_INTEGER, {
            maxTime: Number.MAX_SAFE_INTEGER,
            late: Number.MAX_SAFE_INTEGER,
            viewHash: "",
          }),
        ],
        ["zero", checkpoint(0, { maxTime: null, late: 0 })],
        ["before1970", checkpoint(7, { maxTime: -86_400_000 })],
        // Names with the separators and glob characters a key layout might trip on.
        ["p:1{x}*?[a] ü ✈ 𝄞", checkpoint(8, { viewHash: "hash ü ✈ 𝄞 \n\t" })],
      ];
      for (const [shard, cp] of cases) await s.save(view, shard, null, cp);
      for (const [shard, cp] of cases) assertCheckpoint(await s.loadShard(view, shard), shard, cp);
      const loaded = await s.load(view);
      assert.deepEqual(
        loaded.map((c) => c.shard),
        cases.map(([shard]) => shard).sort(byString),
        "load returns every shard, ordered by shard",
      );
      for (const [shard, cp] of cases) {
        assertCheckpoint(
          loaded.find((c) => c.shard === shard),
          shard,
          cp,
        );
      }

      // A view name with the same awkward characters, and one that prefixes another's.
      for (const odd of [`${view}:x{y}*`, `${view} ü ✈`, `${view}:`]) {
        await s.save(odd, "s", null, checkpoint(4, { state: bytes(9, 10) }));
        assertCheckpoint(await s.loadShard(odd, "s"), "s", checkpoint(4, { state: bytes(9, 10) }));
      }
      assert.equal((await s.load(view)).length, cases.length, "other views are not mixed in");
    });

    test("the store keeps its own copy of a state", async () => {
      const s = shared!;
      const view = uniqueView();
      const state = bytes(3, 64);
      await s.save(view, "p0", null, checkpoint(4, { state }));
      state.fill(0);
      const loaded = await s.loadShard(view, "p0");
      assert.ok(sameBytes(loaded!.state, bytes(3, 64)), "changing the saved array changes nothing");
      loaded!.state.fill(0);
      assert.ok(
        sameBytes((await s.loadShard(view, "p0"))!.state, bytes(3, 64)),
        "changing a loaded array changes nothing",
      );
    });

    test("a zombie's save on a stale position conflicts and leaves the newer checkpoint", async () => {
      const s = shared!;
      const view = uniqueView();
      // Worker A checkpoints; a restart (worker B) takes the shard over from A's checkpoint.
      await s.save(view, "p0", null, checkpoint(10, { state: bytes(1, 10) }));
      const resumed = await s.loadShard(view, "p0");
      const newer = checkpoint(20, { state: bytes(2, 20) });
      await s.save(view, "p0", resumed!.position, newer);
      const version = await s.version(view);

      // A still runs and checkpoints what it folded since position 10.
      for (const expected of [10, null, 15, 30]) {
        await assertConflict(
          s.save(view, "p0", expected, checkpoint(25, { state: bytes(3, 25) })),
          `expected ${expected} against a stored 20`,
        );
      }
      assertCheckpoint(await s.loadShard(view, "p0"), "p0", newer);
      assert.equal(await s.version(view), version, "failed saves do not move the version");

      // B goes on from its own checkpoint; a save may also keep the position.
      const next = checkpoint(20, { state: bytes(4, 20), late: 3 });
      await s.save(view, "p0", 20, next);
      assertCheckpoint(await s.loadShard(view, "p0"), "p0", next);
      await s.save(view, "p0", 20, checkpoint(31));
      assert.equal((await s.loadShard(view, "p0"))!.position, 31);
    });

    test("saving the stored checkpoint again resolves and changes nothing (a resent save)", async () => {
      const s = shared!;
      const view = uniqueView();
      const first = checkpoint(10, { state: bytes(5, 1000), maxTime: null });
      await s.save(view, "p0", null, first);
      const version = await s.version(view);
      const savedAt = (await s.loadShard(view, "p0"))!.savedAt;
      // The retry carries the same expected (null), which is no longer the stored position.
      await s.save(view, "p0", null, { ...first, state: Uint8Array.from(first.state) });
      assert.equal(await s.version(view), version, "an idempotent save does not move the version");
      const stored = await s.loadShard(view, "p0");
      assertCheckpoint(stored, "p0", first);
      assert.equal(stored!.savedAt, savedAt, "the stored checkpoint is untouched");

      // Anything that differs is a conflict, not a repeat.
      const differs: Partial<ShardCheckpoint>[] = [
        { state: bytes(6, 1000) },
        { state: bytes(5, 999) },
        { viewHash: "other" },
        { maxTime: 0 },
        { late: 1 },
        { position: 11 },
      ];
      for (const change of differs) {
        await assertConflict(
          s.save(view, "p0", null, { ...first, ...change }),
          `differs in ${Object.keys(change).join()}`,
        );
      }
      assertCheckpoint(await s.loadShard(view, "p0"), "p0", first);
    });

    test(`two writers racing on one shard with one expected: exactly one wins (${RACE_ROUNDS} rounds)`, async () => {
      const view = uniqueView();
      const writers = shared!.capabilities.shared ? [shared!, await another()] : [shared!, shared!];
      let expected: number | null = null;
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const base: number = expected ?? 0;
        // Writer w moves the position by w + 1, so the stored position names the winner.
        const attempts: ShardCheckpoint[] = writers.map((_, w) =>
          checkpoint(base + w + 1, { state: bytes(round * 2 + w, 32 + w) }),
        );
        const results: PromiseSettledResult<void>[] = await Promise.allSettled(
          writers.map((s, w) => s.save(view, "p0", expected, attempts[w]!)),
        );
        const won: number[] = results.flatMap((r, w) => (r.status === "fulfilled" ? [w] : []));
        assert.equal(won.length, 1, `round ${round}: exactly one save lands`);
        for (const r of results) {
          if (r.status === "rejected") {
            assert.ok(isTributaryError(r.reason, "TRB_CATALOG_CONFLICT"), String(r.reason));
          }
        }
        const winner = attempts[won[0]!]!;
        for (const s of writers) assertCheckpoint(await s.loadShard(view, "p0"), "p0", winner);
        expected = winner.position;
      }
    });

    test("shards are independent, and load returns every shard of the view", async () => {
      const s = shared!;
      const view = uniqueView();
      const other = uniqueView();
      const b = checkpoint(7, { state: bytes(2, 7) });
      const c = checkpoint(3, { state: bytes(3, 3) });
      await s.save(view, "b", null, b);
      await s.save(view, "a", null, checkpoint(5, { state: bytes(1, 5) }));
      await s.save(view, "c", null, c);
      await s.save(other, "a", null, checkpoint(99));

      // Shard a moves on and conflicts; b and c keep their own positions and states.
      const a = checkpoint(12, { state: bytes(4, 12) });
      await s.save(view, "a", 5, a);
      await assertConflict(s.save(view, "a", 5, checkpoint(13)), "a is at 12");
      await assertConflict(s.save(view, "b", 12, checkpoint(13)), "b is at 7, whatever a is at");
      await s.save(view, "c", 3, checkpoint(3, { state: bytes(3, 3), late: 1 }));

      const loaded = await s.load(view);
      assert.deepEqual(
        loaded.map((x) => x.shard),
        ["a", "b", "c"],
      );
      assertCheckpoint(loaded[0], "a", a);
      assertCheckpoint(loaded[1], "b", b);
      assertCheckpoint(loaded[2], "c", { ...c, late: 1 });
      assert.equal((await s.load(other)).length, 1);
    });

    test("the version moves on every change, and only then", async () => {
      const s = shared!;
      const view = uniqueView();
      let last = await s.version(view);
      const moved = async (what: string): Promise<void> => {
        const now = await s.version(view);
        assert.ok(now > last, `${what} moves the version (${last} → ${now})`);
        last = now;
      };
      const still = async (what: string): Promise<void> => {
        assert.equal(await s.version(view), last, `${what} leaves the version`);
      };
      await s.save(view, "p0", null, checkpoint(1));
      await moved("a first save");
      await s.save(view, "p1", null, checkpoint(1));
      await moved("another shard's first save");
      for (let i = 1; i <= 5; i++) {
        await s.save(view, "p0", i, checkpoint(i + 1));
        await moved(`save ${i}`);
        await assertConflict(s.save(view, "p0", i, checkpoint(i + 2)), "stale");
        await still(`conflict ${i}`);
      }
      await s.save(view, "p0", 6, checkpoint(6, { late: 1 }));
      await moved("a save that keeps the position");
      await s.save(view, "p0", 6, checkpoint(6, { late: 1 }));
      await still("a repeated save");
      await s.remove(view, "p1");
      await moved("removing a shard");
      await s.remove(view);
      await moved("removing the view");
      await s.save(view, "p0", null, checkpoint(1));
      await moved("a save after the view was removed");
    });

    test("remove deletes one shard or a whole view; a removed shard starts over", async () => {
      const s = shared!;
      const view = uniqueView();
      const other = uniqueView();
      await s.save(view, "a", null, checkpoint(10));
      await s.save(view, "b", null, checkpoint(20, { state: bytes(2, 20) }));
      await s.save(other, "a", null, checkpoint(30));

      await s.remove(view, "a");
      assert.equal(await s.loadShard(view, "a"), undefined);
      assert.deepEqual(
        (await s.load(view)).map((c) => c.shard),
        ["b"],
      );
      assertCheckpoint(await s.loadShard(view, "b"), "b", checkpoint(20, { state: bytes(2, 20) }));
      await assertConflict(s.save(view, "a", 10, checkpoint(11)), "a was removed");
      await s.save(view, "a", null, checkpoint(1));

      await s.remove(view);
      assert.deepEqual(await s.load(view), []);
      assert.equal(await s.loadShard(view, "b"), undefined);
      assert.equal((await s.loadShard(other, "a"))!.position, 30, "other views stay");
      await s.remove(view);
      await s.remove(view, "nothing");
      await s.remove(uniqueView());
      await s.save(view, "b", null, checkpoint(5));
      assert.equal((await s.loadShard(view, "b"))!.position, 5);
    });

    test("bad names and numbers are RangeErrors and write nothing", async () => {
      const s = shared!;
      const view = uniqueView();
      const bad: [string, () => Promise<unknown>][] = [
        ["empty view", () => s.save("", "p0", null, checkpoint(1))],
        ["empty shard", () => s.save(view, "", null, checkpoint(1))],
        ["NUL in a view", () => s.save(`${view}\0`, "p0", null, checkpoint(1))],
        ["NUL in a shard", () => s.save(view, "p\0", null, checkpoint(1))],
        ["negative position", () => s.save(view, "p0", null, checkpoint(-1))],
        ["fractional position", () => s.save(view, "p0", null, checkpoint(1.5))],
        ["NaN position", () => s.save(view, "p0", null, checkpoint(Number.NaN))],
        ["unsafe position", () => s.save(view, "p0", null, checkpoint(2 ** 53))],
        ["negative expected", () => s.save(view, "p0", -1, checkpoint(1))],
        ["fractional maxTime", () => s.save(view, "p0", null, checkpoint(1, { maxTime: 0.5 }))],
        ["negative late", () => s.save(view, "p0", null, checkpoint(1, { late: -1 }))],
        ["NUL in viewHash", () => s.save(view, "p0", null, checkpoint(1, { viewHash: "\0" }))],
        ["lone surrogate in a shard", () => s.save(view, "p\uD800", null, checkpoint(1))],
        ["lone surrogate in a view", () => s.save(`${view}\uDC00`, "p0", null, checkpoint(1))],
        [
          "lone surrogate in viewHash",
          () => s.save(view, "p0", null, checkpoint(1, { viewHash: "\uD800" })),
        ],
        ["empty view to load", () => s.load("")],
        ["empty shard to load", () => s.loadShard(view, "")],
        ["empty shard to remove", () => s.remove(view, "")],
      ];
      for (const [what, call] of bad) {
        await assert.rejects(call(), RangeError, what);
      }
      assert.deepEqual(await s.load(view), []);
      assert.equal(await s.version(view), 0);
    });
  });

  describe(`SpeedStore contract: ${name}, across restarts`, { skip: skip.restart }, () => {
    let dir = "";
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "trb-speed-"));
    });
    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    test("a new instance over the same storage sees every checkpoint, the version and the fence", async () => {
      const view = uniqueView();
      const a = checkpoint(40, { state: randomBytes(4096), maxTime: 1_000 });
      const b = checkpoint(9, { state: new Uint8Array(0), late: 2 });
      const first = await makeStore(dir);
      try {
        await first.save(view, "a", null, checkpoint(20));
        await first.save(view, "a", 20, a);
        await first.save(view, "b", null, b);
      } finally {
        await first.close();
      }
      const version = await (async () => {
        const second = await makeStore(dir);
        try {
          const loaded = await second.load(view);
          assert.deepEqual(
            loaded.map((c) => c.shard),
            ["a", "b"],
          );
          assertCheckpoint(loaded[0], "a", a);
          assertCheckpoint(loaded[1], "b", b);
          const v = await second.version(view);
          assert.ok(v > 0);
          await assertConflict(second.save(view, "a", 20, checkpoint(50)), "the fence persists");
          await second.save(view, "a", 40, checkpoint(50));
          return v;
        } finally {
          await second.close();
        }
      })();
      const third = await makeStore(dir);
      try {
        assert.equal((await third.loadShard(view, "a"))!.position, 50);
        assert.ok((await third.version(view)) > version, "the version never goes back");
      } finally {
        await third.close();
      }
    });
  });
}

/** A view name of its own for one case. */
function uniqueView(): string {
  return `v_${randomBytes(5).toString("hex")}`;
}

/** A checkpoint at `position` with a small default state. */
function checkpoint(position: number, overrides: Partial<ShardCheckpoint> = {}): ShardCheckpoint {
  return {
    viewHash: "h1",
    position,
    maxTime: 1_700_000_000_000,
    late: 0,
    state: bytes(position, 16),
    ...overrides,
  };
}

/** `length` bytes that depend on `seed`. */
function bytes(seed: number, length: number): Uint8Array {
  return new Uint8Array(length).map((_, i) => (seed * 31 + i * 7) % 256);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Asserts that `got` is `want` as stored for `shard`; states are compared without printing them. */
function assertCheckpoint(
  got: StoredShardCheckpoint | undefined,
  shard: string,
  want: ShardCheckpoint,
): void {
  assert.ok(got !== undefined, `shard ${shard} is stored`);
  const { state, savedAt, ...fields } = got;
  const { state: wantState, ...wantFields } = want;
  assert.deepEqual(fields, { ...wantFields, shard }, `fields of shard ${shard}`);
  assert.ok(state instanceof Uint8Array, "the state is a Uint8Array");
  assert.equal(state.byteLength, wantState.byteLength, `state length of shard ${shard}`);
  assert.ok(sameBytes(state, wantState), `state bytes of shard ${shard} differ`);
  assert.equal(typeof savedAt, "string");
  assert.ok(!Number.isNaN(Date.parse(savedAt)), `savedAt ${savedAt} is a time`);
}

async function assertConflict(save: Promise<void>, why: string): Promise<void> {
  await assert.rejects(
    save,
    (e: unknown) => isTributaryError(e, "TRB_CATALOG_CONFLICT"),
    `a conflict: ${why}`,
  );
}
