// Runs the SpeedStore contract suite against PostgreSQL, plus the tables it creates and racing pools.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import pg from "pg";
import { isTributaryError } from "../../errors.js";
import { speedStoreContract } from "../contracts/speed-store.case.js";
import { PostgresCatalog } from "./catalog-store.js";
import { PostgresSpeedStore } from "./speed-store.js";
import { PG_URL, testSchemas } from "./pg.test-util.js";

const URL = PG_URL;
const { schemaFor } = testSchemas("trb_test");

speedStoreContract("PostgresSpeedStore", (dir) =>
  PostgresSpeedStore.open({ url: URL, schema: schemaFor(dir) }),
);

describe("PostgresSpeedStore", () => {
  test("shares a schema with the catalog: its tables are its own", async (t) => {
    const schema = schemaFor(`catalog:${randomBytes(4).toString("hex")}`);
    const catalog = await PostgresCatalog.open({ url: URL, schema });
    const store = await PostgresSpeedStore.open({ url: URL, schema });
    t.after(async () => {
      await store.close();
      await catalog.close();
    });
    const state = Uint8Array.from([1, 2, 3]);
    await catalog.saveSpeedCheckpoint({
      view: "v",
      viewHash: "h",
      position: 7,
      maxTime: null,
      late: 0,
      state,
    });
    await store.save("v", "p0", null, { viewHash: "h", position: 9, maxTime: 1, late: 0, state });
    assert.equal((await catalog.speedCheckpoint("v"))!.position, 7);
    assert.equal((await store.loadShard("v", "p0"))!.position, 9);
    const admin = new pg.Client({ connectionString: URL });
    await admin.connect();
    t.after(() => admin.end());
    const { rows } = await admin.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'speed%' ORDER BY table_name",
      [schema],
    );
    assert.deepEqual(
      rows.map((r) => r.table_name),
      ["speed_checkpoints", "speed_shard_checkpoints", "speed_store_versions"],
    );
  });

  test("four pools saving every shard of a view at once: one save per (shard, round), versions dense", async (t) => {
    const schema = schemaFor(`race:${randomBytes(4).toString("hex")}`);
    const stores: PostgresSpeedStore[] = [];
    t.after(async () => {
      for (const s of stores) await s.close();
    });
    for (let i = 0; i < 4; i++) stores.push(await PostgresSpeedStore.open({ url: URL, schema }));
    const shards = ["p0", "p1", "p2"];
    const ROUNDS = 10;
    let landed = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const expected = round === 0 ? null : round;
      const results = await Promise.allSettled(
        stores.flatMap((s, w) =>
          shards.map((shard) =>
            s.save("v", shard, expected, {
              viewHash: "h",
              position: round + 1,
              maxTime: null,
              late: w,
              state: Uint8Array.from([w, round]),
            }),
          ),
        ),
      );
      for (const r of results) {
        if (r.status === "fulfilled") landed++;
        else assert.ok(isTributaryError(r.reason, "TRB_CATALOG_CONFLICT"), String(r.reason));
      }
      const stored = await stores[0]!.load("v");
      assert.deepEqual(
        stored.map((c) => c.position),
        [round + 1, round + 1, round + 1],
      );
    }
    assert.equal(landed, ROUNDS * shards.length, "one save lands per shard and round");
    assert.equal(await stores[3]!.version("v"), ROUNDS * shards.length, "one version per save");
  });
});
