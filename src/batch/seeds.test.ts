// Tests of seed loading with the embedded catalog and lake: first load, no-op reload, replacement, bad files.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { LocalObjectStore } from "../backends/local/object-store.js";
import { SqliteCatalog } from "../backends/sqlite/catalog-store.js";
import type { SeedPlan } from "../config/index.js";
import { isTributaryError } from "../errors.js";
import { quoteString } from "../lake/index.js";
import { loadSeeds, seedKeyPrefix } from "./seeds.js";

const AIRPORTS = `iata,name,state,latitude
ORD,Chicago O'Hare International,IL,41.9786
JFK,John F Kennedy Intl,NY,40.6398
SFO,San Francisco International,CA,37.619
`;

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

describe("loadSeeds", () => {
  let conn: DuckDBConnection;
  let dir = "";
  let lakeDir = "";
  let stagingDir = "";
  let catalog: SqliteCatalog;
  let lake: LocalObjectStore;

  before(async () => {
    const db = await DuckDBInstance.create(":memory:", { threads: "1" });
    conn = await db.connect();
  });
  after(() => conn.closeSync());

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "trb-seeds-"));
    lakeDir = join(dir, "lake");
    stagingDir = join(lakeDir, "_staging");
    catalog = new SqliteCatalog(join(dir, "catalog.db"));
    lake = new LocalObjectStore(lakeDir);
  });
  afterEach(async () => {
    await catalog.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes a seed file into the temp dir and returns its plan. */
  function seedFile(name: string, file: string, text: string, extra: Partial<SeedPlan> = {}) {
    const path = join(dir, file);
    writeFileSync(path, text);
    return { name, path, description: undefined, owner: undefined, ...extra } satisfies SeedPlan;
  }

  function load(...plans: SeedPlan[]) {
    return loadSeeds({
      seeds: new Map(plans.map((p) => [p.name, p])),
      catalog,
      lake,
      conn,
      stagingDir,
    });
  }

  async function readLake(key: string): Promise<unknown[][]> {
    const path = await lake.localPath(key);
    const r = await conn.runAndReadAll(
      `SELECT * FROM read_parquet(${quoteString(path)}) ORDER BY 1`,
    );
    return r.getRowsJson();
  }

  test("engines loading a seed at once leave one live file: the others find it loaded", async () => {
    const airports = seedFile("airports", "airports.csv", AIRPORTS);
    // Three engines (batch processes starting together), each with its own DuckDB connection.
    const dbs = await Promise.all([1, 2, 3].map(() => DuckDBInstance.create(":memory:")));
    const conns = await Promise.all(dbs.map((d) => d.connect()));
    try {
      const tables = await Promise.all(
        conns.map((c) =>
          loadSeeds({
            seeds: new Map([["airports", airports]]),
            catalog,
            lake,
            conn: c,
            stagingDir,
          }),
        ),
      );
      const files = await catalog.files({ layer: "seed", name: "airports" });
      assert.equal(files.length, 1, `one live file: ${files.map((f) => f.path).join(", ")}`);
      assert.equal(files[0]!.rows, 3);
      for (const t of tables) assert.deepEqual(t[0]!.columns, tables[0]![0]!.columns);
      // The refused loads removed their objects: only the live one is in the lake.
      const objects = await lake.list("seed/airports/");
      assert.deepEqual(
        objects.map((o) => o.key),
        files.map((f) => f.path),
      );
    } finally {
      for (const c of conns) c.closeSync();
    }
  });

  test("the first load writes one Parquet file and registers the columns DuckDB infers", async () => {
    const airports = seedFile("airports", "airports.csv", AIRPORTS, {
      description: "US airports",
      owner: "ops@example.com",
    });
    const carriers = seedFile("carriers", "carriers.csv", "code,name\nAA,American\n");
    const hash = sha256(AIRPORTS);

    const tables = await load(carriers, airports);

    assert.deepEqual(
      tables.map((t) => t.name),
      ["airports", "carriers"],
    );
    assert.deepEqual(tables[0], {
      name: "airports",
      path: airports.path,
      columns: [
        { name: "iata", type: "VARCHAR" },
        { name: "name", type: "VARCHAR" },
        { name: "state", type: "VARCHAR" },
        { name: "latitude", type: "DOUBLE" },
      ],
      hash,
      description: "US airports",
      owner: "ops@example.com",
    });
    const prefix = `seed/airports/${hash.slice(0, 16)}-`;
    assert.equal(seedKeyPrefix("airports", hash), prefix);
    const files = await catalog.files({ layer: "seed", name: "airports" });
    assert.equal(files.length, 1);
    assert.match(files[0]!.path, new RegExp(`^${prefix}[0-9a-f]{8}\\.parquet$`));
    const key = files[0]!.path;
    assert.deepEqual(files[0]!.partition, {});
    assert.equal(files[0]!.rows, 3);
    assert.ok(files[0]!.bytes > 0);
    assert.equal(files[0]!.minTime, null);
    assert.equal(files[0]!.maxTime, null);
    const ds = await catalog.dataset({ layer: "seed", name: "airports" });
    assert.equal(ds?.kind, "seed");
    assert.deepEqual(ds?.partitionColumns, []);
    assert.deepEqual(ds?.columns, tables[0]!.columns);
    assert.equal(ds?.description, "US airports (owner: ops@example.com)");
    assert.deepEqual(await readLake(key), [
      ["JFK", "John F Kennedy Intl", "NY", 40.6398],
      ["ORD", "Chicago O'Hare International", "IL", 41.9786],
      ["SFO", "San Francisco International", "CA", 37.619],
    ]);
    const snaps = await catalog.snapshots(10);
    assert.deepEqual(snaps.map((s) => s.summary).sort(), [
      `seed airports ${hash.slice(0, 16)}`,
      `seed carriers ${sha256("code,name\nAA,American\n").slice(0, 16)}`,
    ]);
    assert.deepEqual(readdirSync(stagingDir), []);
  });

  test("loading the same file again writes nothing and takes the columns from the catalog", async () => {
    const airports = seedFile("airports", "airports.csv", AIRPORTS);
    const first = await load(airports);
    const snapshot = await catalog.latestSnapshot();
    const objects = await lake.list("seed/");

    const second = await load(airports);

    assert.equal(await catalog.latestSnapshot(), snapshot);
    assert.deepEqual(await lake.list("seed/"), objects);
    assert.deepEqual(second, first);
  });

  test("a changed file replaces the old one in one commit", async () => {
    const airports = seedFile("airports", "airports.csv", AIRPORTS);
    await load(airports);
    const oldKey = (await catalog.files({ layer: "seed", name: "airports" }))[0]!.path;
    const before = await catalog.latestSnapshot();
    const changed = AIRPORTS + "DEN,Denver Intl,CO,39.8617\n";
    writeFileSync(airports.path, changed);

    const [table] = await load(airports);

    const newKey = (await catalog.files({ layer: "seed", name: "airports" }))[0]!.path;
    assert.ok(newKey.startsWith(seedKeyPrefix("airports", sha256(changed))));
    assert.equal(table!.hash, sha256(changed));
    assert.equal(await catalog.latestSnapshot(), before + 1);
    const [snap] = await catalog.snapshots(1);
    assert.equal(snap!.filesAdded, 1);
    assert.equal(snap!.filesRemoved, 1);
    const files = await catalog.files({ layer: "seed", name: "airports" });
    assert.deepEqual(
      files.map((f) => [f.path, f.rows]),
      [[newKey, 4]],
    );
    const live = await catalog.livePaths();
    assert.ok(!live.has(oldKey));
    assert.equal((await readLake(newKey)).length, 4);
    // The old file stays readable at the old snapshot (time travel).
    const old = await catalog.files({ layer: "seed", name: "airports" }, before);
    assert.deepEqual(
      old.map((f) => f.path),
      [oldKey],
    );
    assert.equal((await readLake(oldKey)).length, 3);
  });

  test("a file changed back to earlier bytes loads again under a new key", async () => {
    const airports = seedFile("airports", "airports.csv", AIRPORTS);
    await load(airports);
    const first = (await catalog.files({ layer: "seed", name: "airports" }))[0]!.path;
    writeFileSync(airports.path, AIRPORTS + "DEN,Denver Intl,CO,39.8617\n");
    await load(airports);
    writeFileSync(airports.path, AIRPORTS);
    const [table] = await load(airports);
    const files = await catalog.files({ layer: "seed", name: "airports" });
    assert.equal(files.length, 1);
    assert.notEqual(files[0]!.path, first, "a key the catalog has seen is not reused");
    assert.ok(files[0]!.path.startsWith(seedKeyPrefix("airports", sha256(AIRPORTS))));
    assert.equal(table!.hash, sha256(AIRPORTS));
    assert.equal((await readLake(files[0]!.path)).length, 3);
  });

  test("a changed column type adds a schema version", async () => {
    const codes = seedFile("codes", "codes.csv", "code,n\nA,1\n");
    await load(codes);
    writeFileSync(codes.path, "code,n\nA,1.5\n");
    const [table] = await load(codes);
    assert.deepEqual(table!.columns, [
      { name: "code", type: "VARCHAR" },
      { name: "n", type: "DOUBLE" },
    ]);
    const ds = await catalog.dataset({ layer: "seed", name: "codes" });
    assert.equal(ds?.schemaVersion, 2);
  });

  test("a file DuckDB cannot read gives TRB_SEED_INVALID naming the seed and file", async () => {
    const good = seedFile("airports", "airports.csv", AIRPORTS);
    const bad = seedFile("broken", "broken.parquet", "this is not parquet");

    await assert.rejects(load(good, bad), (e: unknown) => {
      assert.ok(isTributaryError(e, "TRB_SEED_INVALID"), String(e));
      assert.match(e.message, /^seed broken \(.*broken\.parquet\): DuckDB cannot read it: /);
      assert.match(e.message, /Invalid Input Error: No magic bytes/);
      assert.ok(!e.message.includes("\n"), e.message);
      return true;
    });
    assert.equal(await catalog.dataset({ layer: "seed", name: "broken" }), undefined);
    assert.deepEqual(await lake.list("seed/broken/"), []);
    assert.deepEqual(readdirSync(stagingDir), []);
  });

  test("a CSV the sniffer rejects and a missing file give TRB_SEED_INVALID", async () => {
    const binary = join(dir, "binary.csv");
    writeFileSync(binary, Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) % 256)));
    await assert.rejects(
      load({ name: "binary", path: binary, description: undefined, owner: undefined }),
      (e: unknown) => isTributaryError(e, "TRB_SEED_INVALID") && e.message.includes("binary.csv"),
    );
    const missing = join(dir, "missing.csv");
    await assert.rejects(
      load({ name: "missing", path: missing, description: undefined, owner: undefined }),
      (e: unknown) => isTributaryError(e, "TRB_SEED_INVALID") && e.message.includes("ENOENT"),
    );
  });

  test("a Parquet seed is loaded with its own types", async () => {
    const path = join(dir, "plants.parquet");
    await conn.run(
      `COPY (SELECT * FROM (VALUES (1::BIGINT, 'north', DATE '2024-01-01'), (2, 'south', NULL)) t(id, region, opened))
       TO ${quoteString(path)} (FORMAT parquet)`,
    );

    const [table] = await load({ name: "plants", path, description: undefined, owner: undefined });

    assert.deepEqual(table!.columns, [
      { name: "id", type: "BIGINT" },
      { name: "region", type: "VARCHAR" },
      { name: "opened", type: "DATE" },
    ]);
    const files = await catalog.files({ layer: "seed", name: "plants" });
    assert.equal(files.length, 1);
    assert.equal(files[0]!.rows, 2);
    assert.deepEqual(await readLake(files[0]!.path), [
      ["1", "north", "2024-01-01"],
      ["2", "south", null],
    ]);
    const ds = await catalog.dataset({ layer: "seed", name: "plants" });
    assert.equal(ds?.description, "Seed table loaded from plants.parquet");
  });

  test("a TSV seed and a path with a quote are read", async () => {
    const tsv = seedFile("labels", "it's.tsv", "code\tlabel\nA\tone, two\nB\tthree\n");
    const [table] = await load(tsv);
    assert.deepEqual(table!.columns, [
      { name: "code", type: "VARCHAR" },
      { name: "label", type: "VARCHAR" },
    ]);
    const [file] = await catalog.files({ layer: "seed", name: "labels" });
    assert.deepEqual(await readLake(file!.path), [
      ["A", "one, two"],
      ["B", "three"],
    ]);
  });
});
