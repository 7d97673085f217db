// The Catalog contract suite: every CatalogStore backend runs it (see catalog.ts for the contract it checks).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { isTributaryError } from "../../errors.js";
import type {
  BatchTaskInfo,
  CatalogStore,
  DatasetRef,
  FileEntry,
  PartitionState,
  SchemaColumn,
} from "./catalog.js";

/** Makes a CatalogStore whose state lives in `dir` (or, for a server backend, is keyed by it). */
export type MakeCatalog = (dir: string) => CatalogStore | Promise<CatalogStore>;

/**
 * Runs the Catalog contract against one backend.
 * @example catalogContract("sqlite", (dir) => new SqliteCatalog(join(dir, "catalog.db")));
 */
export function catalogContract(name: string, makeCatalog: MakeCatalog): void {
  async function setup(t: TestContext): Promise<Fixture> {
    const dir = mkdtempSync(join(tmpdir(), "trb-catalog-"));
    const live = new Set<CatalogStore>();
    t.after(async () => {
      for (const c of live) await c.close();
      rmSync(dir, { recursive: true, force: true });
    });
    // Unique names keep tests apart on backends whose state outlives the folder (a shared server).
    const tag = randomBytes(4).toString("hex");
    return {
      tag,
      ref: (n = "events") => ({ layer: "raw", name: `${n}_${tag}` }),
      make: async () => {
        const c = await makeCatalog(dir);
        live.add(c);
        return c;
      },
      close: async (c) => {
        live.delete(c);
        await c.close();
      },
    };
  }

  const CONSUMER = "land";

  describe(`Catalog contract: ${name}`, () => {
    test("ensureDataset registers a dataset and is idempotent", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = f.ref();
      assert.equal(await c.dataset(ref), undefined);
      const first = await c.ensureDataset(ref, def(COLUMNS));
      assert.equal(first.layer, "raw");
      assert.equal(first.name, ref.name);
      assert.equal(first.kind, "stream");
      assert.equal(first.description, "test events");
      assert.deepEqual(first.columns, COLUMNS);
      assert.deepEqual(first.partitionColumns, ["dt", "hour"]);
      assert.equal(first.schemaVersion, 1);
      const again = await c.ensureDataset(ref, def(COLUMNS));
      assert.equal(again.id, first.id);
      assert.equal(again.schemaVersion, 1, "the same columns add no schema version");
      assert.deepEqual(await c.dataset(ref), again);
      const mine = (await c.datasets()).filter((d) => d.name === ref.name);
      assert.equal(mine.length, 1);
    });

    test("a changed column list adds a schema version; files keep the version they were written with", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = f.ref();
      await c.ensureDataset(ref, def(COLUMNS));
      const s1 = await c.commit({ dataset: ref, add: [file(ref, "a")], summary: "v1 file" });
      const wider = [...COLUMNS, { name: "price", type: "DOUBLE" }];
      const v2 = await c.ensureDataset(ref, def(wider));
      assert.equal(v2.schemaVersion, 2);
      assert.deepEqual(v2.columns, wider);
      assert.equal(
        (await c.ensureDataset(ref, def(wider))).schemaVersion,
        2,
        "unchanged again: no bump",
      );
      const typed = wider.map((col) =>
        col.name === "price" ? { ...col, type: "DECIMAL(10,2)" } : col,
      );
      assert.equal(
        (await c.ensureDataset(ref, def(typed))).schemaVersion,
        3,
        "a changed type is a change",
      );
      const versions = await c.schemaVersions(ref);
      assert.deepEqual(
        versions.map((v) => [v.version, v.columns]),
        [
          [1, COLUMNS],
          [2, wider],
          [3, typed],
        ],
        "every version kept, oldest first",
      );
      assert.ok(versions.every((v) => !Number.isNaN(Date.parse(v.createdAt))));
      assert.deepEqual(await c.schemaVersions({ layer: "raw", name: "nope" }), []);
      await c.commit({ dataset: ref, add: [file(ref, "b")], summary: "v3 file" });
      const files = await c.files(ref);
      assert.deepEqual(
        files.map((x) => [x.path, x.schemaVersion]),
        [
          [file(ref, "a").path, 1],
          [file(ref, "b").path, 3],
        ],
      );
      assert.equal(files[0]!.addedIn, s1.id);
    });

    test("datasets lists every dataset; dataset of an unknown ref is undefined", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      await c.ensureDataset(f.ref("one"), def(COLUMNS));
      await c.ensureDataset(
        { layer: "dlq", name: `one_${f.tag}` },
        { ...def(COLUMNS), kind: "dead_letter" },
      );
      const mine = (await c.datasets())
        .filter((d) => d.name.endsWith(f.tag))
        .map((d) => `${d.layer}.${d.name}`);
      assert.deepEqual(mine.sort(), [`dlq.one_${f.tag}`, `raw.one_${f.tag}`]);
      assert.equal(await c.dataset({ layer: "raw", name: `nope_${f.tag}` }), undefined);
    });

    test("commit makes files visible and moves positions together", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = f.ref();
      await c.ensureDataset(ref, def(COLUMNS));
      const stream = ref.name;
      assert.equal(await c.position(CONSUMER, stream, 0), 0, "no position yet is 0");
      const before = await c.latestSnapshot();
      const added = [
        file(ref, "a", { minTime: null, maxTime: null }),
        file(ref, "b", { partition: { dt: "2001-01-02", hour: "23" } }),
      ];
      const snap = await c.commit({
        dataset: ref,
        add: added,
        positions: [{ consumer: CONSUMER, stream, partition: 0, from: 0, to: 11 }],
        summary: "land 10 events",
      });
      assert.ok(snap.id > before, "snapshot ids increase");
      assert.equal(await c.latestSnapshot(), snap.id);
      assert.equal(snap.dataset, `raw.${ref.name}`);
      assert.equal(snap.summary, "land 10 events");
      assert.equal(snap.filesAdded, 2);
      assert.equal(snap.filesRemoved, 0);
      assert.ok(!Number.isNaN(Date.parse(snap.committedAt)));
      assert.equal(await c.position(CONSUMER, stream, 0), 11);
      const files = await c.files(ref);
      assert.deepEqual(
        files.map(({ path, partition, rows, bytes, minTime, maxTime }) => ({
          path,
          partition,
          rows,
          bytes,
          minTime,
          maxTime,
        })),
        added,
      );
      for (const x of files) {
        assert.equal(x.dataset, `raw.${ref.name}`);
        assert.equal(x.addedIn, snap.id);
      }
      const live = await c.livePaths();
      for (const x of added) assert.ok(live.has(x.path));
      const registered = await c.registeredPaths();
      for (const x of added) assert.ok(registered.has(x.path));
    });

    test("a commit whose `from` is not the stored position conflicts and changes nothing", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = f.ref();
      await c.ensureDataset(ref, def(COLUMNS));
      const stream = ref.name;
      await c.commit({
        dataset: ref,
        add: [file(ref, "a")],
        positions: [pos(stream, 0, 5)],
        summary: "first",
      });
      const snapBefore = await c.latestSnapshot();
      const historyBefore = await c.snapshots(1000);
      for (const from of [0, 4, 6]) {
        await assert.rejects(
          c.commit({
            dataset: ref,
            add: [file(ref, `x${from}`)],
            remove: [file(ref, "a").path],
            positions: [pos(stream, from, 9)],
            summary: "stale",
          }),
          (e: unknown) => isTributaryError(e, "TRB_CATALOG_CONFLICT"),
          `from ${from}`,
        );
      }
      assert.equal(await c.position(CONSUMER, stream, 0), 5);
      assert.deepEqual(
        (await c.files(ref)).map((x) => x.path),
        [file(ref, "a").path],
      );
      assert.equal(await c.latestSnapshot(), snapBefore);
      assert.deepEqual(await c.snapshots(1000), historyBefore);
      const live = await c.livePaths();
      assert.ok(!live.has(file(ref, "x0").path));
    });

    test("a commit with one stale position among several changes none of them", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = f.ref();
      await c.ensureDataset(ref, def(COLUMNS));
      await c.commit({
        dataset: ref,
        add: [],
        positions: [pos("s1", 0, 3), { ...pos("s1", 0, 7), partition: 1 }],
        summary: "init",
      });
      await assert.rejects(
        c.commit({
          dataset: ref,
          add: [file(ref, "a")],
          positions: [pos("s1", 3, 10), { ...pos("s1", 6, 12), partition: 1 }],
          summary: "half stale",
        }),
        (e: unknown) => isTributaryError(e, "TRB_CATALOG_CONFLICT"),
      );
      assert.equal(await c.position(CONSUMER, "s1", 0), 3);
      assert.equal(await c.position(CONSUMER, "s1", 1), 7);
      assert.equal(await c.position("other", "s1", 0), 0, "positions are per consumer");
      assert.deepEqual(await c.files(ref), []);
    });

    test("of two committers from the same position exactly one wins", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = f.ref();
      await c.ensureDataset(ref, def(COLUMNS));
      const results = await Promise.allSettled(
        ["p", "q"].map((who) =>
          c.commit({
            dataset: ref,
            add: [file(ref, who)],
            positions: [pos(ref.name, 0, 10)],
            summary: who,
          }),
        ),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      assert.equal(won.length, 1);
      assert.equal(lost.length, 1);
      assert.ok(isTributaryError(lost[0]!.reason, "TRB_CATALOG_CONFLICT"));
      assert.equal((await c.files(ref)).length, 1);
      assert.equal(await c.position(CONSUMER, ref.name, 0), 10);
    });

    test("a commit to an unknown dataset fails with TRB_CATALOG_UNKNOWN_DATASET", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = f.ref("ghost");
      await assert.rejects(
        c.commit({
          dataset: ref,
          add: [file(ref, "a")],
          positions: [pos(ref.name, 0, 2)],
          summary: "nowhere",
        }),
        (e: unknown) => isTributaryError(e, "TRB_CATALOG_UNKNOWN_DATASET"),
      );
      assert.equal(await c.position(CONSUMER, ref.name, 0), 0);
    });

    test("removing files replaces them; snapshots give time travel", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = f.ref();
      await c.ensureDataset(ref, def(COLUMNS));
      const s0 = await c.latestSnapshot();
      const [a, b, m] = [file(ref, "a"), file(ref, "b"), file(ref, "merged")];
      const s1 = await c.commit({ dataset: ref, add: [a, b], summary: "land" });
      const s2 = await c.commit({
        dataset: ref,
        add: [m],
        remove: [a.path, b.path],
        summary: "compact",
      });
      assert.equal(s2.filesAdded, 1);
      assert.equal(s2.filesRemoved, 2);
      const paths = async (snapshot?: number): Promise<string[]> =>
        (await c.files(ref, snapshot)).map((x) => x.path).sort();
      assert.deepEqual(await paths(s0), []);
      assert.deepEqual(await paths(s1.id), [a.path, b.path].sort());
      assert.deepEqual(await paths(s2.id), [m.path]);
      assert.deepEqual(await paths(), [m.path]);
      const live = await c.livePaths();
      assert.ok(live.has(m.path));
      assert.ok(!live.has(a.path) && !live.has(b.path), "replaced files are not live");
      const registered = await c.registeredPaths();
      for (const x of [a, b, m])
        assert.ok(registered.has(x.path), "replaced files stay registered");
      // A snapshot of another dataset in between does not change this dataset's view.
      const other = f.ref("other");
      await c.ensureDataset(other, def(COLUMNS));
      const s3 = await c.commit({ dataset: other, add: [file(other, "o")], summary: "other" });
      assert.ok(s3.id > s2.id, "snapshot ids are ordered across datasets");
      assert.deepEqual(await paths(s3.id), [m.path]);
      assert.deepEqual((await c.files(other, s2.id)).length, 0);
      assert.deepEqual((await c.files(other)).length, 1);
    });

    test("removing a file that is not live conflicts and changes nothing", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = f.ref();
      const other = f.ref("other");
      await c.ensureDataset(ref, def(COLUMNS));
      await c.ensureDataset(other, def(COLUMNS));
      const [a, b, o] = [file(ref, "a"), file(ref, "b"), file(other, "o")];
      await c.commit({ dataset: ref, add: [a], summary: "a" });
      await c.commit({ dataset: ref, add: [b], remove: [a.path], summary: "b replaces a" });
      await c.commit({ dataset: other, add: [o], summary: "o" });
      const before = await c.latestSnapshot();
      const bad: [string, string[]][] = [
        ["never added", [file(ref, "nope").path]],
        ["already removed", [a.path]],
        ["of another dataset", [o.path]],
        ["named twice", [b.path, b.path]],
      ];
      for (const [why, remove] of bad) {
        await assert.rejects(
          c.commit({
            dataset: ref,
            add: [file(ref, "c")],
            remove,
            positions: [pos(ref.name, 0, 4)],
            summary: why,
          }),
          (e: unknown) => isTributaryError(e, "TRB_CATALOG_CONFLICT"),
          why,
        );
      }
      assert.equal(await c.latestSnapshot(), before);
      assert.deepEqual(
        (await c.files(ref)).map((x) => x.path),
        [b.path],
      );
      assert.deepEqual(
        (await c.files(other)).map((x) => x.path),
        [o.path],
      );
      assert.equal(await c.position(CONSUMER, ref.name, 0), 0);
    });

    test("snapshots lists the newest first, up to the limit", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = f.ref();
      await c.ensureDataset(ref, def(COLUMNS));
      const made = [];
      for (let i = 0; i < 4; i++)
        made.push(
          await c.commit({ dataset: ref, add: [file(ref, `f${i}`)], summary: `commit ${i}` }),
        );
      const listed = await c.snapshots(3);
      assert.equal(listed.length, 3);
      assert.deepEqual(
        listed.map((s) => s.id),
        made
          .slice(1)
          .map((s) => s.id)
          .reverse(),
      );
      assert.deepEqual(listed[0], made[3]);
    });

    test("commits are durable: a reopened catalog sees them", async (t) => {
      const f = await setup(t);
      const c1 = await f.make();
      const ref = f.ref();
      await c1.ensureDataset(ref, def(COLUMNS));
      const snap = await c1.commit({
        dataset: ref,
        add: [file(ref, "a")],
        positions: [pos(ref.name, 0, 8)],
        summary: "durable",
      });
      await f.close(c1);
      const c2 = await f.make();
      assert.equal((await c2.dataset(ref))?.schemaVersion, 1);
      assert.deepEqual(
        (await c2.files(ref)).map((x) => x.path),
        [file(ref, "a").path],
      );
      assert.equal(await c2.position(CONSUMER, ref.name, 0), 8);
      assert.equal(await c2.latestSnapshot(), snap.id);
      assert.ok((await c2.livePaths()).has(file(ref, "a").path));
    });

    test("partition states committed with files become visible with them", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = { layer: "t1", name: `flights_${f.tag}` };
      const model = `t1.${ref.name}`;
      await c.ensureDataset(ref, def(COLUMNS));
      assert.deepEqual(await c.partitions(model), [], "no states before the first build");
      const d1 = file(ref, "d1", { partition: { day: "2001-01-01" } });
      const d2 = file(ref, "d2", { partition: { day: "2001-01-02" } });
      const built = [
        partition(model, "2001-01-02", { rows: 7, inputSnapshot: await c.latestSnapshot() }),
        partition(model, "2001-01-01", { rows: 10, inputSnapshot: await c.latestSnapshot() }),
      ];
      await c.commit({ dataset: ref, add: [d1, d2], partitions: built, summary: "build" });
      assert.deepEqual(await c.partitions(model), [built[1], built[0]], "ordered by day");
      // A rebuild replaces a day's files and its state in one commit; the other day is kept.
      const s1 = await c.latestSnapshot();
      const d1b = file(ref, "d1b", { partition: { day: "2001-01-01" } });
      const rebuilt = partition(model, "2001-01-01", {
        modelHash: "h2",
        inputSnapshot: s1,
        builtAt: "2001-01-05T00:00:00.000Z",
        runId: 2,
        rows: 12,
      });
      const s2 = await c.commit({
        dataset: ref,
        add: [d1b],
        remove: [d1.path],
        partitions: [rebuilt],
        summary: "rebuild",
      });
      assert.deepEqual(await c.partitions(model), [rebuilt, built[0]]);
      assert.deepEqual(
        (await c.files(ref)).map((x) => x.path),
        [d2.path, d1b.path],
      );
      assert.equal(await c.latestSnapshot(), s2.id);
    });

    test("a commit that conflicts leaves partition states untouched", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const ref = { layer: "t1", name: `flights_${f.tag}` };
      const model = `t1.${ref.name}`;
      await c.ensureDataset(ref, def(COLUMNS));
      const a = file(ref, "a");
      const stale = partition(model, "2001-01-01", {
        status: "stale",
        reason: "raw.flights changed",
      });
      await c.commit({
        dataset: ref,
        add: [a],
        positions: [pos(ref.name, 0, 5)],
        partitions: [stale],
        summary: "first",
      });
      const fresh = partition(model, "2001-01-01", { runId: 9, rows: 99 });
      const added = partition(model, "2001-01-02");
      const conflicting: [string, { from: number; remove: string[] }][] = [
        ["a stale position `from`", { from: 4, remove: [a.path] }],
        ["a removed file that is not live", { from: 5, remove: [file(ref, "gone").path] }],
      ];
      for (const [why, { from, remove }] of conflicting) {
        await assert.rejects(
          c.commit({
            dataset: ref,
            add: [file(ref, "b")],
            remove,
            positions: [pos(ref.name, from, 9)],
            partitions: [fresh, added],
            summary: why,
          }),
          (e: unknown) => isTributaryError(e, "TRB_CATALOG_CONFLICT"),
          why,
        );
        assert.deepEqual(await c.partitions(model), [stale], why);
      }
      assert.deepEqual(
        (await c.files(ref)).map((x) => x.path),
        [a.path],
      );
    });

    test("setPartitions upserts by model and day and stores each state as given", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const [m1, m2] = [`t1.a_${f.tag}`, `t2.a_${f.tag}`];
      const first = [
        partition(m2, "*", { rows: 3 }),
        partition(m1, "2001-01-02"),
        partition(m1, "2001-01-01", { rows: 4 }),
      ];
      await c.setPartitions(first);
      await c.setPartitions([]);
      const mine = async (): Promise<PartitionState[]> =>
        (await c.partitions()).filter((p) => p.model.endsWith(f.tag));
      assert.deepEqual(await mine(), [first[2], first[1], first[0]], "ordered by model, day");
      assert.deepEqual(await c.partitions(m2), [first[0]]);
      assert.deepEqual(await c.partitions(`t9.none_${f.tag}`), []);
      // fresh -> stale: the caller passes builtAt and the rest on; they are kept as given.
      const stale: PartitionState = { ...first[2]!, status: "stale", reason: "raw changed" };
      // A state with nulls replaces the stored one whole: nothing is merged from before.
      const failed = partition(m1, "2001-01-02", {
        status: "failed",
        modelHash: null,
        inputSnapshot: null,
        builtAt: null,
        runId: 8,
        rows: null,
        reason: "TRB_BATCH_TASK_FAILED",
      });
      const later = partition(m1, "2001-01-03", { status: "stale", reason: "first" });
      const last = { ...later, reason: "second" };
      await c.setPartitions([stale, failed, later, last]);
      assert.deepEqual(await c.partitions(m1), [stale, failed, last], "the last of a day wins");
      assert.deepEqual(await c.partitions(m2), [first[0]], "other models are untouched");
    });

    test("a run is recorded running, then finished; runs lists the newest first", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const before = Date.now();
      const ids = [];
      for (const [i, days] of [["2001-01-01"], ["2001-01-01", "2001-01-02", "*"], []].entries())
        ids.push(await c.startRun({ trigger: `manual-${i}-${f.tag}`, days }));
      const after = Date.now();
      assert.ok(ids[0]! < ids[1]! && ids[1]! < ids[2]!, "run ids increase");
      const running = await c.run(ids[1]!);
      assert.ok(running);
      assert.deepEqual(
        { ...running, startedAt: undefined },
        {
          id: ids[1],
          trigger: `manual-1-${f.tag}`,
          status: "running",
          startedAt: undefined,
          finishedAt: null,
          days: ["2001-01-01", "2001-01-02", "*"],
          error: null,
        },
      );
      const started = Date.parse(running.startedAt);
      assert.ok(started >= before - 1000 && started <= after + 1000, "started now");
      await c.finishRun(ids[0]!, "succeeded");
      await c.finishRun(ids[1]!, "failed", "TRB_BATCH_TASK_FAILED: t1.flights 2001-01-02");
      const done = await c.run(ids[0]!);
      assert.equal(done?.status, "succeeded");
      assert.equal(done?.error, null);
      assert.ok(Date.parse(done.finishedAt ?? "") >= Date.parse(done.startedAt));
      const failed = await c.run(ids[1]!);
      assert.deepEqual(
        { ...failed, finishedAt: undefined },
        {
          ...running,
          status: "failed",
          finishedAt: undefined,
          error: "TRB_BATCH_TASK_FAILED: t1.flights 2001-01-02",
        },
      );
      assert.ok(failed?.finishedAt && !Number.isNaN(Date.parse(failed.finishedAt)));
      assert.equal((await c.run(ids[2]!))?.status, "running", "other runs are untouched");
      const mine = (await c.runs(1000)).filter((r) => r.trigger.endsWith(f.tag));
      assert.deepEqual(
        mine.map((r) => r.id),
        [...ids].reverse(),
      );
      assert.deepEqual(mine[1], failed);
      // Another backend's shared server may record runs concurrently: newer ones may come first.
      const latest = await c.runs(2);
      assert.equal(latest.length, 2);
      assert.ok(latest[0]!.id > latest[1]!.id, "newest first");
      assert.ok(latest[1]!.id >= ids[1]!, "the latest runs, not the oldest");
      assert.equal(await c.run(ids[2]! + 1_000_000), undefined);
      await assert.rejects(c.finishRun(ids[2]! + 1_000_000, "succeeded"), (e: unknown) =>
        isTributaryError(e, "TRB_CATALOG_CONFLICT"),
      );
    });

    test("tasks round-trip with every field, in the order they were recorded", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const run = await c.startRun({ trigger: `backfill-${f.tag}`, days: ["2001-01-01"] });
      const other = await c.startRun({ trigger: `manual-${f.tag}`, days: ["2001-01-01"] });
      const tasks: BatchTaskInfo[] = [
        {
          runId: run,
          model: `t2.z_${f.tag}`,
          days: ["2001-01-01", "2001-01-02"],
          status: "succeeded",
          attempts: 2,
          startedAt: "2001-02-01T10:00:00.000Z",
          ms: 65_432,
          // More than 2^32: row counts of a backfill do not fit a 32-bit column.
          rowsIn: 5_000_000_001,
          rowsOut: 4_999_999_999,
          error: null,
        },
        {
          runId: run,
          model: `t1.a_${f.tag}`,
          days: ["*"],
          status: "failed",
          attempts: 3,
          startedAt: "2001-02-01T09:00:00.000Z",
          ms: 12,
          rowsIn: 0,
          rowsOut: 0,
          error: "TRB_BATCH_TEST_FAILED: not_null(origin)",
        },
        {
          runId: run,
          model: `t3.b_${f.tag}`,
          days: ["2001-01-01"],
          status: "blocked",
          attempts: 0,
          startedAt: null,
          ms: null,
          rowsIn: null,
          rowsOut: null,
          error: `blocked by t1.a_${f.tag}`,
        },
      ];
      for (const task of tasks) await c.recordTask(task);
      const skipped: BatchTaskInfo = { ...tasks[2]!, runId: other, status: "skipped", error: null };
      await c.recordTask(skipped);
      assert.deepEqual(await c.tasks(run), tasks);
      assert.deepEqual(await c.tasks(other), [skipped]);
      assert.deepEqual(await c.tasks(other + 1_000_000), []);
    });

    test("test results round-trip with every field and filter by run and model", async (t) => {
      const f = await setup(t);
      const c = await f.make();
      const [r1, r2] = [
        await c.startRun({ trigger: `manual-${f.tag}`, days: ["2001-01-01"] }),
        await c.startRun({ trigger: `repair-${f.tag}`, days: ["2001-01-01"] }),
      ];
      const [ma, mb] = [`t1.b_${f.tag}`, `t1.a_${f.tag}`];
      const result = (runId: number, model: string, test: string, failures: number) => ({
        runId,
        model,
        day: model === mb ? "*" : "2001-01-01",
        test,
        passed: failures === 0,
        failures,
        message: failures === 0 ? null : `${failures} rows break ${test}`,
      });
      const first = [
        result(r1, ma, "not_null(origin)", 0),
        result(r1, mb, "unique(code)", 3),
        // A failed test need not name breaking rows: an empty partition fails row_count.
        { ...result(r1, ma, "row_count(min 1)", 0), passed: false, message: "0 rows, not 1" },
      ];
      const second = [result(r2, ma, "not_null(origin)", 0), result(r2, mb, "unique(code)", 0)];
      await c.recordTests(first);
      await c.recordTests([]);
      await c.recordTests(second);
      assert.deepEqual(await c.testResults({ runId: r1 }), first);
      assert.deepEqual(await c.testResults({ runId: r2 }), second);
      assert.deepEqual(await c.testResults({ model: mb }), [first[1], second[1]]);
      assert.deepEqual(await c.testResults({ runId: r1, model: ma }), [first[0], first[2]]);
      assert.deepEqual(await c.testResults({ runId: r2 + 1_000_000 }), []);
      const all = (await c.testResults({})).filter((r) => r.model.endsWith(f.tag));
      assert.deepEqual(all, [...first, ...second]);
    });

    test("batch records are durable: a reopened catalog sees them", async (t) => {
      const f = await setup(t);
      const c1 = await f.make();
      const ref = { layer: "t1", name: `flights_${f.tag}` };
      const model = `t1.${ref.name}`;
      await c1.ensureDataset(ref, def(COLUMNS));
      const run = await c1.startRun({ trigger: `manual-${f.tag}`, days: ["2001-01-01"] });
      const built = partition(model, "2001-01-01", { runId: run });
      await c1.commit({
        dataset: ref,
        add: [file(ref, "a")],
        partitions: [built],
        summary: "build",
      });
      const failed = partition(model, "2001-01-02", { status: "failed", runId: run });
      await c1.setPartitions([failed]);
      const task: BatchTaskInfo = {
        runId: run,
        model,
        days: ["2001-01-01"],
        status: "succeeded",
        attempts: 1,
        startedAt: "2001-02-01T10:00:00.000Z",
        ms: 5,
        rowsIn: 10,
        rowsOut: 10,
        error: null,
      };
      await c1.recordTask(task);
      const tested = {
        runId: run,
        model,
        day: "2001-01-01",
        test: "not_null(origin)",
        passed: true,
        failures: 0,
        message: null,
      };
      await c1.recordTests([tested]);
      await c1.finishRun(run, "interrupted", "stopped");
      const finished = await c1.run(run);
      await f.close(c1);
      const c2 = await f.make();
      assert.deepEqual(await c2.partitions(model), [built, failed]);
      assert.deepEqual(await c2.run(run), finished);
      assert.deepEqual(await c2.tasks(run), [task]);
      assert.deepEqual(await c2.testResults({ runId: run }), [tested]);
      assert.ok((await c2.startRun({ trigger: `next-${f.tag}`, days: [] })) > run);
    });

    test("a speed checkpoint round-trips, is replaced by the next, and survives a reopen", async (t) => {
      const f = await setup(t);
      const c1 = await f.make();
      const view = `departures_${f.tag}`;
      assert.equal(await c1.speedCheckpoint(view), undefined);
      const first = {
        view,
        viewHash: "h1",
        position: 42,
        maxTime: Date.parse("2001-01-01T10:00:00Z"),
        late: 3,
        state: new Uint8Array([1, 2, 3, 0, 255]),
      };
      await c1.saveSpeedCheckpoint(first);
      const read = await c1.speedCheckpoint(view);
      assert.deepEqual({ ...read, savedAt: undefined }, { ...first, savedAt: undefined });
      assert.ok(!Number.isNaN(Date.parse(read!.savedAt)));
      const second = {
        ...first,
        position: 9_000_000_000,
        maxTime: null,
        late: 0,
        state: new Uint8Array(70_000).fill(7),
      };
      await c1.saveSpeedCheckpoint(second);
      await f.close(c1);
      const c2 = await f.make();
      const again = await c2.speedCheckpoint(view);
      assert.equal(again?.position, 9_000_000_000);
      assert.equal(again?.maxTime, null);
      assert.deepEqual(again?.state, second.state);
    });
  });

  function pos(stream: string, from: number, to: number) {
    return { consumer: CONSUMER, stream, partition: 0, from, to };
  }
}

interface Fixture {
  /** A tag unique to the test, in every dataset name it makes. */
  readonly tag: string;
  ref(name?: string): DatasetRef;
  make(): Promise<CatalogStore>;
  close(c: CatalogStore): Promise<void>;
}

const COLUMNS: readonly SchemaColumn[] = [
  { name: "_event_id", type: "VARCHAR", description: "Event id" },
  { name: "_event_time", type: "TIMESTAMP" },
  { name: "amount", type: "BIGINT" },
];

function def(columns: readonly SchemaColumn[]) {
  return { kind: "stream", description: "test events", columns, partitionColumns: ["dt", "hour"] };
}

function file(ref: DatasetRef, id: string, over: Partial<FileEntry> = {}): FileEntry {
  return {
    path: `${ref.layer}/${ref.name}/dt=2001-01-01/hour=05/part-${id}.parquet`,
    partition: { dt: "2001-01-01", hour: "05" },
    rows: 10,
    bytes: 1234,
    minTime: Date.UTC(2001, 0, 1, 5),
    maxTime: Date.UTC(2001, 0, 1, 5, 59),
    ...over,
  };
}

/** A fresh partition state, built at a fixed time; `over` changes any field. */
function partition(model: string, day: string, over: Partial<PartitionState> = {}): PartitionState {
  return {
    model,
    day,
    status: "fresh",
    modelHash: "h1",
    inputSnapshot: 1,
    builtAt: "2001-01-03T04:05:06.789Z",
    runId: 1,
    rows: 10,
    reason: null,
    ...over,
  };
}
