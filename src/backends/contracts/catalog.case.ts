// The Catalog contract suite: every CatalogStore backend runs it (see catalog.ts for the contract it checks).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { isTributaryError } from "../../errors.js";
import type { CatalogStore, DatasetRef, FileEntry, SchemaColumn } from "./catalog.js";

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
