// Runs the Catalog contract suite against PostgreSQL, plus concurrent committers, a dropped connection and schema parity with SQLite.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test, type TestContext } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import { isTributaryError } from "../../errors.js";
import { CATALOG_TABLES, type LogicalType } from "../catalog-schema.js";
import { catalogContract } from "../contracts/catalog.case.js";
import type { CatalogStore, Commit, DatasetRef, PartitionState } from "../contracts/index.js";
import { openEmbeddedCatalog } from "../registry.js";
import { PostgresCatalog } from "./catalog-store.js";
import { PG_URL, testSchemas } from "./pg.test-util.js";

const URL = PG_URL;
const { schemaFor } = testSchemas("trb_test");

// Each contract test gets a folder, and so a schema: the state a reopened catalog must see.
catalogContract("PostgresCatalog", (dir) =>
  PostgresCatalog.open({ url: URL, schema: schemaFor(dir) }),
);

const COLUMNS = [{ name: "_event_id", type: "VARCHAR" }];
const DEF = { kind: "stream", columns: COLUMNS, partitionColumns: ["dt"] };

/** Opens `count` catalogs on one fresh schema, each with its own pool (as separate processes). */
async function openCatalogs(
  t: TestContext,
  count: number,
): Promise<{ catalogs: PostgresCatalog[]; schema: string }> {
  const schema = schemaFor(`${t.name}:${randomBytes(4).toString("hex")}`);
  const catalogs: PostgresCatalog[] = [];
  t.after(async () => {
    for (const c of catalogs) await c.close();
  });
  for (let i = 0; i < count; i++) catalogs.push(await PostgresCatalog.open({ url: URL, schema }));
  return { catalogs, schema };
}

function landing(ref: DatasetRef, from: number, to: number, who: string): Commit {
  return {
    dataset: ref,
    add: [
      {
        path: `raw/${ref.name}/dt=2001-01-01/${from}-${to}-${who}.parquet`,
        partition: { dt: "2001-01-01" },
        rows: to - from,
        bytes: 100,
        minTime: null,
        maxTime: null,
      },
    ],
    positions: [{ consumer: "land", stream: ref.name, partition: 0, from, to }],
    summary: `${who} lands ${from}..${to}`,
  };
}

const range = (first: number, count: number): number[] =>
  Array.from({ length: count }, (_, i) => first + i);

describe("PostgresCatalog", () => {
  test("separate pools commit the same stream range at once: one lands per range, snapshots stay dense", async (t) => {
    const { catalogs } = await openCatalogs(t, 4);
    const ref = { layer: "raw", name: "race" };
    await catalogs[0]!.ensureDataset(ref, DEF);
    const start = await catalogs[0]!.latestSnapshot();
    const ROUNDS = 25;
    const won: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [from, to] = [round * 10, round * 10 + 10];
      const results = await Promise.allSettled(
        catalogs.map((c, i) => c.commit(landing(ref, from, to, `w${i}`))),
      );
      const ok = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      assert.equal(ok.length, 1, `round ${round}: one commit lands`);
      for (const r of lost) {
        assert.ok(isTributaryError(r.reason, "TRB_CATALOG_CONFLICT"), String(r.reason));
      }
      won.push(ok[0]!.value.id);
    }
    assert.deepEqual(won, range(start + 1, ROUNDS), "snapshot ids are dense, in commit order");
    for (const c of catalogs) {
      assert.equal(await c.latestSnapshot(), start + ROUNDS);
      assert.equal(await c.position("land", ref.name, 0), ROUNDS * 10);
    }
    const files = await catalogs[1]!.files(ref);
    assert.equal(files.length, ROUNDS, "one file per range");
    assert.deepEqual(
      (await catalogs[2]!.snapshots(ROUNDS)).map((s) => s.id),
      [...won].reverse(),
    );
  });

  test("workers that each commit from the position they read never register a range twice", async (t) => {
    const { catalogs } = await openCatalogs(t, 3);
    const ref = { layer: "raw", name: "tiles" };
    await catalogs[0]!.ensureDataset(ref, DEF);
    const start = await catalogs[0]!.latestSnapshot();
    let landed = 0;
    let conflicts = 0;
    // Each worker reads the position, then commits the next 1..5 records from it, as landers do.
    await Promise.all(
      catalogs.map(async (c, w) => {
        for (let i = 0; i < 30; i++) {
          const from = await c.position("land", ref.name, 0);
          try {
            await c.commit(landing(ref, from, from + 1 + ((w + i) % 5), `w${w}-${i}`));
            landed++;
          } catch (e) {
            if (!isTributaryError(e, "TRB_CATALOG_CONFLICT")) throw e;
            conflicts++;
          }
        }
      }),
    );
    assert.equal(landed + conflicts, 90);
    assert.ok(landed > 0);
    const ranges = (await catalogs[0]!.files(ref))
      .map((f) => /\/(\d+)-(\d+)-/.exec(f.path)!.slice(1).map(Number) as [number, number])
      .sort((a, b) => a[0] - b[0]);
    assert.equal(ranges.length, landed);
    let next = 0;
    for (const [from, to] of ranges) {
      assert.equal(from, next, "ranges tile the stream: no gap, no overlap");
      next = to;
    }
    assert.equal(await catalogs[1]!.position("land", ref.name, 0), next);
    assert.equal(await catalogs[2]!.latestSnapshot(), start + landed);
  });

  test("a connection dropped mid-commit leaves nothing half-committed; the next commit lands", async (t) => {
    const { catalogs, schema } = await openCatalogs(t, 1);
    const catalog = catalogs[0]!;
    const ref = { layer: "t1", name: "cut" };
    await catalog.ensureDataset(ref, DEF);
    const state: PartitionState = {
      model: "t1.cut",
      day: "2001-01-01",
      status: "fresh",
      modelHash: "h1",
      inputSnapshot: 0,
      builtAt: "2001-01-02T00:00:00.000Z",
      runId: 1,
      rows: 5,
      reason: null,
    };
    await catalog.commit({ ...landing(ref, 0, 5, "first"), partitions: [state] });
    const before = await catalog.latestSnapshot();
    const rebuilt = { ...state, modelHash: "h2", rows: 9 };
    const next = { ...landing(ref, 5, 9, "second"), partitions: [rebuilt] };

    // Another session locks the partition row, so the commit stops at its last write: after its
    // snapshot, file and position writes, while it holds the catalog lock.
    const admin = new pg.Client({ connectionString: URL });
    await admin.connect();
    t.after(() => admin.end());
    await admin.query("BEGIN");
    await admin.query(`SELECT * FROM "${schema}".batch_partitions WHERE model = $1 FOR UPDATE`, [
      state.model,
    ]);
    const adminPid = (await admin.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!
      .pid;
    const outcome = catalog.commit(next).then(
      () => undefined,
      (e: unknown) => e,
    );
    let victim: number | undefined;
    for (let i = 0; i < 400 && victim === undefined; i++) {
      const { rows } = await admin.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
        [adminPid],
      );
      victim = rows[0]?.pid;
      if (victim === undefined) await sleep(25);
    }
    assert.ok(victim !== undefined, "the commit waits on the locked row");
    await admin.query("SELECT pg_terminate_backend($1)", [victim]);
    const error = await outcome;
    assert.ok(error instanceof Error, "the commit fails");
    assert.ok(!isTributaryError(error), `a lost connection is not a conflict: ${String(error)}`);
    await admin.query("ROLLBACK");

    assert.equal(await catalog.latestSnapshot(), before, "no snapshot");
    assert.equal(await catalog.position("land", ref.name, 0), 5, "no position move");
    assert.deepEqual(
      (await catalog.files(ref)).map((f) => f.path),
      [landing(ref, 0, 5, "first").add[0]!.path],
    );
    assert.ok(!(await catalog.registeredPaths()).has(next.add[0]!.path), "no file registered");
    assert.deepEqual(await catalog.partitions(state.model), [state], "no partition state");

    const snap = await catalog.commit(next);
    assert.equal(snap.id, before + 1, "the snapshot id the lost commit would have had");
    assert.equal(await catalog.position("land", ref.name, 0), 9);
    assert.deepEqual(await catalog.partitions(state.model), [rebuilt]);
  });

  test("the SQLite and PostgreSQL catalogs create the same tables, columns and indexes from one definition", async (t) => {
    const { schema } = await openCatalogs(t, 1);
    const admin = new pg.Client({ connectionString: URL });
    await admin.connect();
    t.after(() => admin.end());
    const pgColumns = await admin.query<{
      table_name: string;
      column_name: string;
      data_type: string;
      collation_name: string | null;
      is_nullable: string;
    }>(
      `SELECT table_name, column_name, data_type, collation_name, is_nullable
       FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`,
      [schema],
    );
    const pgIndexes = await admin.query<{ indexname: string }>(
      "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'",
      [schema],
    );

    const dir = mkdtempSync(join(tmpdir(), "trb-pg-parity-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    await openEmbeddedCatalog(dir).close();
    const lite = new Database(join(dir, "catalog.db"), { readonly: true });
    t.after(() => lite.close());
    const liteTables = lite
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      )
      .pluck()
      .all() as string[];
    const liteColumns = (table: string): string[] =>
      (lite.pragma(`table_info(${table})`) as { name: string }[]).map((r) => r.name);
    const liteIndexes = lite
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
      .pluck()
      .all() as string[];

    const defined = new Map(CATALOG_TABLES.map((tb) => [tb.name, tb.columns.map((x) => x.name)]));
    const fromPg = new Map<string, string[]>();
    for (const r of pgColumns.rows) {
      fromPg.set(r.table_name, [...(fromPg.get(r.table_name) ?? []), r.column_name]);
    }
    const fromSqlite = new Map(liteTables.map((name) => [name, liteColumns(name)]));
    const sorted = (m: Map<string, string[]>) =>
      [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    assert.deepEqual(
      sorted(fromPg),
      sorted(defined),
      "PostgreSQL has the defined columns, in order",
    );
    assert.deepEqual(
      sorted(fromSqlite),
      sorted(defined),
      "SQLite has the defined columns, in order",
    );
    const indexes = CATALOG_TABLES.flatMap((tb) => (tb.indexes ?? []).map((i) => i.name)).sort();
    assert.deepEqual(pgIndexes.rows.map((r) => r.indexname).sort(), indexes);
    assert.deepEqual([...liteIndexes].sort(), indexes);

    // The PostgreSQL types: 64-bit where a value can pass 2^31, byte-order text.
    const expected: Record<LogicalType, string> = {
      text: "text",
      int32: "integer",
      int64: "bigint",
      real: "double precision",
      bytes: "bytea",
    };
    for (const table of CATALOG_TABLES) {
      for (const col of table.columns) {
        const found = pgColumns.rows.find(
          (r) => r.table_name === table.name && r.column_name === col.name,
        )!;
        const where = `${table.name}.${col.name}`;
        assert.equal(found.data_type, expected[col.type], where);
        if (col.type === "text") assert.equal(found.collation_name, "C", where);
        const notNull = col.notNull === true || col.primaryKey === true;
        assert.equal(found.is_nullable, notNull ? "NO" : "YES", where);
      }
    }
  });

  test("names order by code point on both backends, and every read matches SQLite's", async (t) => {
    const pgCatalog = (await openCatalogs(t, 1)).catalogs[0]!;
    const dir = mkdtempSync(join(tmpdir(), "trb-pg-order-"));
    const lite = openEmbeddedCatalog(dir);
    t.after(async () => {
      await lite.close();
      rmSync(dir, { recursive: true, force: true });
    });
    // Upper before lower case, ASCII before accents, "a" before "a_": byte order, not a locale's.
    const names = ["b", "B", "a_b", "a", "é", "Z", "z", "ab", "A"];
    const run = async (c: CatalogStore) => {
      for (const name of names) await c.ensureDataset({ layer: "raw", name }, DEF);
      await c.setPartitions(
        names.flatMap((name) =>
          ["2001-01-02", "2001-01-01"].map((day) => ({
            model: `t1.${name}`,
            day,
            status: "stale" as const,
            modelHash: null,
            inputSnapshot: null,
            builtAt: null,
            runId: null,
            rows: 5_000_000_001,
            reason: "new",
          })),
        ),
      );
      const ref = { layer: "raw", name: "a" };
      await c.commit({
        dataset: ref,
        add: names.map((n) => ({
          path: `raw/a/${n}.parquet`,
          partition: { dt: n },
          rows: 1,
          bytes: 9_000_000_000,
          minTime: 1,
          maxTime: 2,
        })),
        positions: [{ consumer: "land", stream: "a", partition: 3, from: 0, to: 9_000_000_000 }],
        summary: "mixed",
      });
      return {
        datasets: (await c.datasets()).map(({ createdAt: _, ...d }) => d),
        partitions: await c.partitions(),
        files: await c.files(ref),
        snapshots: (await c.snapshots(10)).map(({ committedAt: _, ...s }) => s),
        position: await c.position("land", "a", 3),
      };
    };
    const fromPg = await run(pgCatalog);
    const fromSqlite = await run(lite);
    assert.deepEqual(fromPg, fromSqlite);
    assert.deepEqual(
      fromPg.datasets.map((d) => d.name),
      ["A", "B", "Z", "a", "a_b", "ab", "b", "z", "é"],
    );
  });

  test("a schema name that is not a plain identifier is a config error", async () => {
    await assert.rejects(PostgresCatalog.open({ url: URL, schema: 'x"; DROP' }), (e: unknown) =>
      isTributaryError(e, "TRB_CONFIG_INVALID"),
    );
  });
});
