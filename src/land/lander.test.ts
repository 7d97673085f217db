// Tests of landing with the embedded backends: Hive partitions, flush after commit, crash recovery, lake == log.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import fc from "fast-check";
import { pino } from "pino";
import type { CatalogStore, Stream, StreamRecord } from "../backends/contracts/index.js";
import { LocalObjectStore } from "../backends/local/object-store.js";
import { SqliteCatalog } from "../backends/sqlite/catalog-store.js";
import { SqliteStream } from "../backends/sqlite/stream-log.js";
import { normalize } from "../collect/index.js";
import { parseConfigText, resolvePipeline, type StreamPlan } from "../config/index.js";
import {
  ParquetWriter,
  datasetPrefix,
  quoteString,
  rawDataset,
  type DatasetDef,
} from "../lake/index.js";
import { LAND_CONSUMER, LandStage, Lander, type LanderOptions } from "./index.js";

const log = pino({ level: "silent" });
const HOUR = 3_600_000;
const T0 = Date.UTC(2001, 0, 1);

/** An event of the test streams: id, event time, a number and a free field kept in _extra. */
interface TestEvent {
  readonly id: string;
  readonly time: number;
  readonly n: number;
}

/** A row read back from the lake. */
interface LakeRow {
  readonly id: string;
  readonly time: number;
  readonly n: number;
  readonly extra: string;
  readonly file: string;
}

/** `target` with some methods replaced (the others bound to it, so private fields keep working). */
function override<T extends object>(target: T, patch: Partial<T>): T {
  return new Proxy(target, {
    get(t, key) {
      if (Object.hasOwn(patch, key)) return patch[key as keyof T];
      const v: unknown = Reflect.get(t, key, t);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

describe("Lander", () => {
  let dir = "";
  let lakeDir = "";
  let stream: SqliteStream;
  let catalog: SqliteCatalog;
  let lake: LocalObjectStore;
  let writer: ParquetWriter;
  let duck: DuckDBInstance;
  let reader: DuckDBConnection;
  const landers = new Set<Lander>();

  // The backends are shared; every case uses its own stream and dataset name.
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "trb-land-"));
    lakeDir = join(dir, "lake");
    stream = new SqliteStream(join(dir, "stream.db"));
    catalog = new SqliteCatalog(join(dir, "catalog.db"));
    lake = new LocalObjectStore(lakeDir);
    writer = await ParquetWriter.create();
    duck = await DuckDBInstance.create(":memory:");
    reader = await duck.connect();
  });
  after(async () => {
    for (const l of landers) await l.stop();
    await stream.close();
    await catalog.close();
    writer.close();
    reader.closeSync();
    duck.closeSync();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A new stream `name` with its raw dataset registered. */
  async function setupStream(): Promise<{ name: string; plan: StreamPlan; dataset: DatasetDef }> {
    const name = `s_${randomBytes(4).toString("hex")}`;
    const plan: StreamPlan = {
      name,
      format: "json",
      fields: [
        { name: "id", type: "string", required: true },
        { name: "ts", type: "timestamp", required: true },
        { name: "n", type: "integer", required: false },
      ],
      idField: "id",
      timeField: "ts",
      partitionKey: undefined,
      dedupWindowMs: 600_000,
      dedupMaxIds: 100_000,
      retainMs: 3_600_000,
    };
    await stream.open({
      name,
      dedupWindowMs: plan.dedupWindowMs,
      dedupMaxIds: plan.dedupMaxIds,
      retainMs: plan.retainMs,
    });
    const dataset = rawDataset(plan);
    await catalog.ensureDataset(dataset.ref, dataset);
    return { name, plan, dataset };
  }

  /** A started Lander that lands only on flush() (unless options say otherwise). */
  async function startLander(
    s: { name: string; dataset: DatasetDef },
    over: Partial<LanderOptions> = {},
  ): Promise<Lander> {
    const lander = new Lander({
      stream,
      catalog,
      lake,
      writer,
      streamName: s.name,
      dataset: s.dataset,
      flushMaxBytes: 64 * 1024 * 1024,
      flushMaxAgeMs: 60_000,
      compression: "zstd",
      stagingDir: join(lakeDir, "_staging", s.name),
      log,
      ...over,
    });
    await lander.start();
    landers.add(lander);
    return lander;
  }

  async function stopLander(l: Lander): Promise<void> {
    landers.delete(l);
    await l.stop();
  }

  /** Normalizes and appends events; returns the records appended. */
  async function append(
    s: { name: string; plan: StreamPlan },
    events: readonly TestEvent[],
  ): Promise<StreamRecord[]> {
    const records = events.map((e) => {
      const r = normalize(
        s.plan,
        { id: e.id, ts: e.time, n: e.n, note: `extra ${e.id}` },
        T0 + 1000 * HOUR,
      );
      assert.ok(r.ok);
      return { id: r.id, time: r.time, data: r.data };
    });
    await stream.append(s.name, records);
    return records;
  }

  /** Every row of the dataset's live files, with the file it is in. */
  async function lakeRows(dataset: DatasetDef): Promise<LakeRow[]> {
    const files = await catalog.files(dataset.ref);
    if (files.length === 0) return [];
    const list = files.map((f) => quoteString(join(lakeDir, f.path))).join(", ");
    const result = await reader.runAndReadAll(
      `SELECT _event_id AS id, epoch_ms(_event_time)::DOUBLE AS time, n::DOUBLE AS n, _extra::VARCHAR AS extra, filename AS file
       FROM read_parquet([${list}], filename = true, hive_partitioning = false)`,
    );
    return result.getRowObjectsJson().map((r) => ({
      id: String(r.id),
      time: Number(r.time),
      n: Number(r.n),
      extra: String(r.extra),
      file: String(r.file).slice(lakeDir.length + 1),
    }));
  }

  /** Keys of the objects in the dataset's folder of the lake. */
  async function lakeKeys(dataset: DatasetDef): Promise<string[]> {
    return (await lake.list(datasetPrefix(dataset.ref))).map((o) => o.key).sort();
  }

  const sortById = <T extends { id: string }>(xs: T[]): T[] =>
    [...xs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  test("lands events into dt=/hour= partitions with the right rows, counts and time ranges", async () => {
    const s = await setupStream();
    const lander = await startLander(s);
    const events: TestEvent[] = [
      { id: "a", time: T0 + 5 * HOUR, n: 1 },
      { id: "b", time: T0 + 6 * HOUR - 1, n: 2 },
      { id: "c", time: T0 + 23 * HOUR + 30 * 60_000, n: 3 },
      { id: "d", time: T0 + 24 * HOUR, n: 4 },
      { id: "e", time: T0 + 5 * HOUR + 15 * 60_000, n: 5 },
    ];
    await append(s, events);
    await lander.flush();

    const files = await catalog.files(s.dataset.ref);
    const byPartition = new Map(files.map((f) => [`${f.partition.dt}/${f.partition.hour}`, f]));
    assert.deepEqual([...byPartition.keys()].sort(), [
      "2001-01-01/05",
      "2001-01-01/23",
      "2001-01-02/00",
    ]);
    for (const f of files) {
      assert.match(
        f.path,
        new RegExp(`^raw/${s.name}/dt=${f.partition.dt}/hour=${f.partition.hour}/[^/]+\\.parquet$`),
      );
    }
    const hour5 = byPartition.get("2001-01-01/05")!;
    assert.equal(hour5.rows, 3);
    assert.equal(hour5.minTime, T0 + 5 * HOUR);
    assert.equal(hour5.maxTime, T0 + 6 * HOUR - 1);
    assert.equal(byPartition.get("2001-01-02/00")!.rows, 1);
    assert.deepEqual(
      await lakeKeys(s.dataset),
      files.map((f) => f.path).sort(),
      "the lake holds exactly the committed files",
    );

    const rows = await lakeRows(s.dataset);
    assert.deepEqual(
      sortById(rows).map(({ id, time, n }) => ({ id, time, n })),
      sortById(events),
    );
    for (const r of rows) {
      const f = files.find((x) => x.path === r.file)!;
      const hourStart = Date.parse(`${f.partition.dt}T${f.partition.hour}:00:00Z`);
      assert.ok(
        r.time >= hourStart && r.time < hourStart + HOUR,
        `${r.id} is in the file of its hour`,
      );
      assert.deepEqual(
        JSON.parse(r.extra),
        { note: `extra ${r.id}` },
        "undeclared fields land in _extra",
      );
    }
    for (const f of files)
      assert.equal(rows.filter((r) => r.file === f.path).length, f.rows, `row count of ${f.path}`);
    assert.equal(await catalog.position(LAND_CONSUMER, s.name, 0), await stream.end(s.name));
    await stopLander(lander);
  });

  test("flush resolves only after the catalog commit", async () => {
    const s = await setupStream();
    let committedAt = 0;
    const slow = override<CatalogStore>(catalog, {
      commit: async (c) => {
        await new Promise((r) => setTimeout(r, 300));
        const snap = await catalog.commit(c);
        committedAt = performance.now();
        return snap;
      },
    });
    const lander = await startLander(s, { catalog: slow });
    await lander.flush();
    assert.equal(committedAt, 0, "flush of an empty stream commits nothing");
    await append(
      s,
      [1, 2, 3].map((i) => ({ id: `f${i}`, time: T0 + i * HOUR, n: i })),
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      await catalog.files(s.dataset.ref),
      [],
      "events are buffered until a flush or a limit",
    );
    await Promise.all([lander.flush(), lander.flush()]);
    const flushedAt = performance.now();
    assert.ok(
      committedAt > 0 && committedAt <= flushedAt,
      "the commit finished before flush resolved",
    );
    assert.equal(await catalog.position(LAND_CONSUMER, s.name, 0), 4);
    assert.equal((await lakeRows(s.dataset)).length, 3);
    await stopLander(lander);
  });

  test("the size limit lands without a flush", async () => {
    const s = await setupStream();
    const lander = await startLander(s, { flushMaxBytes: 1 });
    await append(s, [{ id: "big", time: T0, n: 1 }]);
    const deadline = Date.now() + 10_000;
    while ((await catalog.position(LAND_CONSUMER, s.name, 0)) < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal((await lakeRows(s.dataset)).length, 1);
    await stopLander(lander);
  });

  test("a backlog spanning more event hours than one landing writes lands in several commits", async () => {
    const s = await setupStream();
    let commits = 0;
    const counting = override(catalog, {
      commit: async (c) => {
        commits++;
        return catalog.commit(c);
      },
    });
    const lander = await startLander(s, { catalog: counting });
    // One event per hour over 300 hours: more partitions than one DuckDB COPY may open (256).
    const events = Array.from({ length: 300 }, (_, i) => ({
      id: `h${i}`,
      time: T0 + i * HOUR,
      n: i,
    }));
    await append(s, events);
    await lander.flush();
    assert.equal(commits, 2);
    assert.deepEqual(
      sortById(await lakeRows(s.dataset)).map((r) => r.id),
      events.map((e) => e.id).sort(),
    );
    await stopLander(lander);
  });

  test("stop lands what is buffered; a restart resumes from the committed position", async () => {
    const s = await setupStream();
    const first = await startLander(s);
    await append(
      s,
      [1, 2].map((i) => ({ id: `r${i}`, time: T0 + i, n: i })),
    );
    await new Promise((r) => setTimeout(r, 100));
    await stopLander(first);
    await append(
      s,
      [3, 4].map((i) => ({ id: `r${i}`, time: T0 + i, n: i })),
    );
    const second = await startLander(s);
    await second.flush();
    assert.deepEqual(
      sortById(await lakeRows(s.dataset)).map((r) => r.id),
      ["r1", "r2", "r3", "r4"],
    );
    await stopLander(second);
  });

  test("after a crash before the commit, a restarted lander removes orphans and lands nothing twice", async () => {
    const s = await setupStream();
    let reached = false;
    // A commit that never returns: the process froze or died with its files already in the lake.
    const frozen = override<CatalogStore>(catalog, {
      commit: () => {
        reached = true;
        return new Promise(() => undefined);
      },
    });
    const crashed = await startLander(s, { catalog: frozen });
    const events = Array.from({ length: 50 }, (_, i) => ({
      id: `c${i}`,
      time: T0 + i * 10 * 60_000,
      n: i,
    }));
    await append(s, events);
    void crashed.flush();
    const deadline = Date.now() + 10_000;
    while (!reached && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(reached, "the crashed lander got as far as the commit");
    landers.delete(crashed);
    const orphans = await lakeKeys(s.dataset);
    assert.ok(orphans.length > 0, "its files were written");
    assert.deepEqual(await catalog.files(s.dataset.ref), [], "but never committed");
    // One more orphan by hand, and a file of another dataset that must be left alone.
    const stray = `${datasetPrefix(s.dataset.ref)}dt=2001-01-01/hour=07/part-stray.parquet`;
    const neighbour = `raw/${s.name}x/dt=2001-01-01/hour=07/part-other.parquet`;
    for (const key of [stray, neighbour]) {
      mkdirSync(join(lakeDir, key, ".."), { recursive: true });
      writeFileSync(join(lakeDir, key), "not parquet");
    }

    const restarted = await startLander(s);
    assert.deepEqual(await lakeKeys(s.dataset), [], "start removed every uncommitted file");
    assert.deepEqual(
      (await lake.list(`raw/${s.name}x/`)).map((o) => o.key),
      [neighbour],
    );
    await restarted.flush();
    const rows = await lakeRows(s.dataset);
    assert.deepEqual(
      sortById(rows).map(({ id, time, n }) => ({ id, time, n })),
      sortById(events),
    );
    assert.deepEqual(
      await lakeKeys(s.dataset),
      (await catalog.files(s.dataset.ref)).map((f) => f.path).sort(),
    );
    await stopLander(restarted);
  });

  test("after a crash between the catalog commit and the stream commit, nothing is landed twice", async () => {
    const s = await setupStream();
    // The stream's consumer position only drives retention; this one never returns.
    const frozen = override<Stream>(stream, { commit: () => new Promise(() => undefined) });
    const crashed = await startLander(s, { stream: frozen });
    const end =
      (
        await append(
          s,
          Array.from({ length: 20 }, (_, i) => ({ id: `k${i}`, time: T0 + i, n: i })),
        )
      ).length + 1;
    void crashed.flush();
    const deadline = Date.now() + 10_000;
    while ((await catalog.position(LAND_CONSUMER, s.name, 0)) < end && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    landers.delete(crashed);
    const restarted = await startLander(s);
    await restarted.flush();
    assert.equal((await lakeRows(s.dataset)).length, 20);
    await stopLander(restarted);
    assert.equal((await lakeRows(s.dataset)).length, 20, "stopping lands nothing more");
  });

  test("property: after any appends, flushes and restarts, the lake holds exactly the log", async () => {
    const action = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant("append" as const),
          events: fc.array(
            fc.record({
              id: fc.integer({ min: 0, max: 60 }),
              hour: fc.integer({ min: 0, max: 47 }),
              ms: fc.integer({ min: 0, max: HOUR - 1 }),
            }),
            { minLength: 1, maxLength: 25 },
          ),
        }),
      },
      { weight: 2, arbitrary: fc.constant({ kind: "flush" as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: "restart" as const }) },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(action, { minLength: 1, maxLength: 8 }),
        fc.constantFrom(7, 1000),
        fc.constantFrom(2_000, 64 * 1024 * 1024),
        async (actions, readBatch, flushMaxBytes) => {
          const s = await setupStream();
          let lander = await startLander(s, { readBatch, flushMaxBytes });
          for (const a of actions) {
            if (a.kind === "append") {
              // Ids repeat across and within batches: the log keeps the first copy, so must the lake.
              await append(
                s,
                a.events.map((e) => ({
                  id: `p${e.id}`,
                  time: T0 + e.hour * HOUR + e.ms,
                  n: e.hour,
                })),
              );
            } else if (a.kind === "flush") {
              await lander.flush();
            } else {
              await stopLander(lander);
              lander = await startLander(s, { readBatch, flushMaxBytes });
            }
          }
          await lander.flush();
          await stopLander(lander);
          const logged = (await stream.read(s.name, 1, { max: 1_000_000 })).map((r) => {
            const d = JSON.parse(r.data) as { _event_id: string; n: number };
            return { id: d._event_id, time: r.time, n: d.n };
          });
          const rows = await lakeRows(s.dataset);
          assert.deepEqual(
            sortById(rows.map(({ id, time, n }) => ({ id, time, n }))),
            sortById(logged),
          );
          const files = await catalog.files(s.dataset.ref);
          for (const f of files) {
            const mine = rows.filter((r) => r.file === f.path);
            assert.equal(mine.length, f.rows);
            const hourStart = Date.parse(`${f.partition.dt}T${f.partition.hour}:00:00Z`);
            assert.ok(mine.every((r) => r.time >= hourStart && r.time < hourStart + HOUR));
          }
          assert.deepEqual(
            await lakeKeys(s.dataset),
            files.map((f) => f.path).sort(),
            "no file outside the catalog",
          );
        },
      ),
      { numRuns: 10 },
    );
  });

  test("LandStage lands every stream and its dead letters into raw.* and dlq.*", async () => {
    const root = join(dir, "stage");
    const config = parseConfigText(
      [
        "streams:",
        "  orders:",
        "    fields:",
        "      amount: integer",
        "lake:",
        "  flush:",
        "    max_age: 60s",
      ].join("\n"),
      join(root, "tributary.yaml"),
      {},
    );
    const pipeline = resolvePipeline(config, root);
    const stageLake = new LocalObjectStore(pipeline.lakeDir);
    for (const name of ["orders", "orders.dlq"]) {
      await stream.open({ name, dedupWindowMs: 600_000, dedupMaxIds: 1000, retainMs: 3_600_000 });
    }
    const stage = await LandStage.start(pipeline, { stream, catalog, lake: stageLake }, log);
    const plan = pipeline.streams.get("orders")!;
    const good = normalize(plan, { amount: 5 }, T0);
    assert.ok(good.ok);
    await stream.append("orders", [{ id: good.id, time: good.time, data: good.data }]);
    const bad = {
      _event_id: "bad-1",
      _received_at: new Date(T0).toISOString(),
      _event_time: new Date(T0).toISOString(),
      _reason: "amount must be an integer",
      _raw: '{"amount":"x"}',
    };
    await stream.append("orders.dlq", [{ id: "bad-1", time: T0, data: JSON.stringify(bad) }]);
    await stage.flush();
    await stage.stop();
    const raw = await catalog.files({ layer: "raw", name: "orders" });
    const dlq = await catalog.files({ layer: "dlq", name: "orders" });
    assert.equal(raw.length, 1);
    assert.equal(dlq.length, 1);
    assert.match(dlq[0]!.path, /^dlq\/orders\/dt=2001-01-01\/hour=00\//);
    const result = await reader.runAndReadAll(
      `SELECT _reason, _raw FROM read_parquet(${quoteString(join(pipeline.lakeDir, dlq[0]!.path))})`,
    );
    assert.deepEqual(result.getRowsJson(), [["amount must be an integer", '{"amount":"x"}']]);
  });
});
