// Runs the Catalog contract suite against the embedded SQLite catalog, plus its read-only and upgrade cases.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { catalogContract } from "../contracts/catalog.case.js";
import type { PartitionState } from "../contracts/index.js";
import { SqliteCatalog } from "./catalog-store.js";
import { openSqlite } from "./connection.js";

catalogContract("SqliteCatalog", (dir) => new SqliteCatalog(join(dir, "catalog.db")));

describe("SqliteCatalog batch records", () => {
  function tempDb(t: TestContext): string {
    const dir = mkdtempSync(join(tmpdir(), "trb-sqlite-catalog-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    return join(dir, "catalog.db");
  }

  const state: PartitionState = {
    model: "t1.flights",
    day: "2001-01-01",
    status: "fresh",
    modelHash: "h1",
    inputSnapshot: 1,
    builtAt: "2001-01-03T04:05:06.789Z",
    runId: 1,
    rows: 10,
    reason: null,
  };

  test("a read-only open (the CLI beside a running server) reads every batch record", async (t) => {
    const path = tempDb(t);
    const writer = new SqliteCatalog(path);
    t.after(() => writer.close());
    const run = await writer.startRun({ trigger: "manual", days: ["2001-01-01"] });
    await writer.setPartitions([{ ...state, runId: run }]);
    await writer.recordTask({
      runId: run,
      model: "t1.flights",
      days: ["2001-01-01"],
      status: "succeeded",
      attempts: 1,
      startedAt: "2001-02-01T10:00:00.000Z",
      ms: 5,
      rowsIn: 10,
      rowsOut: 10,
      error: null,
    });
    const result = {
      runId: run,
      model: "t1.flights",
      day: "2001-01-01",
      test: "not_null(origin)",
      passed: false,
      failures: 2,
      message: "2 rows",
    };
    await writer.recordTests([result]);
    await writer.finishRun(run, "succeeded");
    const reader = new SqliteCatalog(path, { readonly: true });
    t.after(() => reader.close());
    assert.deepEqual(await reader.partitions(), await writer.partitions());
    assert.deepEqual(await reader.partitions("t1.flights"), [{ ...state, runId: run }]);
    assert.deepEqual(await reader.runs(10), await writer.runs(10));
    assert.deepEqual(await reader.run(run), await writer.run(run));
    assert.deepEqual(await reader.tasks(run), await writer.tasks(run));
    assert.equal((await reader.tasks(run)).length, 1);
    assert.deepEqual(await reader.testResults({ model: "t1.flights" }), [result]);
  });

  test("a catalog written before the batch layer reads empty read-only and upgrades when opened writable", async (t) => {
    const path = tempDb(t);
    const old = new SqliteCatalog(path);
    const ref = { layer: "raw", name: "flights" };
    await old.ensureDataset(ref, {
      kind: "stream",
      columns: [{ name: "_event_id", type: "VARCHAR" }],
      partitionColumns: ["dt"],
    });
    await old.close();
    // What an older version left: the same file without the batch tables.
    const db = openSqlite(path);
    db.exec(
      "DROP TABLE batch_partitions; DROP TABLE batch_runs; DROP TABLE batch_tasks; DROP TABLE batch_test_results;",
    );
    db.close();

    const reader = new SqliteCatalog(path, { readonly: true });
    t.after(() => reader.close());
    assert.equal((await reader.dataset(ref))?.name, "flights");
    assert.deepEqual(await reader.partitions(), []);
    assert.deepEqual(await reader.partitions("t1.flights"), []);
    assert.deepEqual(await reader.runs(10), []);
    assert.equal(await reader.run(1), undefined);
    assert.deepEqual(await reader.tasks(1), []);
    assert.deepEqual(await reader.testResults({}), []);

    const writer = new SqliteCatalog(path);
    t.after(() => writer.close());
    assert.equal((await writer.dataset(ref))?.name, "flights", "the old records are kept");
    await writer.setPartitions([state]);
    const run = await writer.startRun({ trigger: "manual", days: [] });
    assert.deepEqual(await writer.partitions(), [state]);
    // The reader opened before the upgrade sees the tables once the writer has made them.
    assert.deepEqual(await reader.partitions(), [state]);
    assert.equal((await reader.run(run))?.status, "running");
  });
});
