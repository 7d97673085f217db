// Property tests of the speed layer: out-of-order and late events, crashes at any point, exactly once.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { pino } from "pino";
import { MemorySpeedStore } from "../backends/local/speed-store.js";
import { SqliteCatalog } from "../backends/sqlite/catalog-store.js";
import { SqliteStream } from "../backends/sqlite/stream-log.js";
import { parseConfigText, resolvePipeline } from "../config/index.js";
import { ViewAggregator, compileViews } from "../views/index.js";
import { SpeedView } from "./speed-view.js";

const log = pino({ level: "silent" });
const node = compileViews(
  resolvePipeline(
    parseConfigText(
      `
streams:
  flights:
    time_field: date
    fields: { date: timestamp, delay: integer, origin: string, destination: string }
views:
  v:
    stream: flights
    dimensions: [origin]
    allowed_lateness: 10m
    measures: { n: count, mean: avg(delay), high: max(delay), dest: count_distinct(destination), p90: p90(delay) }
`,
      "/p/tributary.yaml",
      {},
    ),
    "/p",
  ),
).get("v")!;

const BASE = Date.parse("2001-01-01T00:00:00Z");

interface Flight {
  readonly id: string;
  readonly time: number;
  readonly delay: number | null;
  readonly origin: string;
  readonly destination: string;
}

/** Events drifting forward in time, some far behind (late), as a replay with stragglers sends them. */
const flightsArb = fc
  .array(
    fc.record({
      step: fc.integer({ min: 0, max: 3 }),
      behind: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 })),
      delay: fc.option(fc.integer({ min: -10, max: 120 }), { freq: 6 }),
      origin: fc.constantFrom("SFO", "LAX"),
      destination: fc.constantFrom("JFK", "BOS", "SEA"),
    }),
    { maxLength: 200 },
  )
  .map((xs) => {
    let minute = 0;
    return xs.map((x, i): Flight => {
      minute += x.step;
      return {
        id: `F${i}`,
        time: BASE + (minute - x.behind) * 60_000,
        delay: x.delay,
        origin: x.origin,
        destination: x.destination,
      };
    });
  });

function record(f: Flight): Record<string, unknown> {
  return {
    _event_id: f.id,
    _event_time: new Date(f.time).toISOString(),
    date: new Date(f.time).toISOString(),
    delay: f.delay,
    origin: f.origin,
    destination: f.destination,
  };
}

/** The definition, independently: an event is late when older than max(time so far) - lateness. */
function reference(flights: readonly Flight[]): { rows: unknown; late: number } {
  const agg = new ViewAggregator(node);
  let max: number | null = null;
  let late = 0;
  for (const f of flights) {
    if (max !== null && f.time < max - node.allowedLatenessMs) {
      late++;
      continue;
    }
    max = max === null ? f.time : Math.max(max, f.time);
    agg.add(record(f), f.time);
  }
  return { rows: agg.rows(), late };
}

describe("SpeedView", () => {
  test("crashes at any point, restarted from checkpoints, apply every event exactly once", async () => {
    await fc.assert(
      fc.asyncProperty(
        flightsArb,
        fc.array(fc.record({ steps: fc.integer({ min: 0, max: 4 }), checkpoint: fc.boolean() }), {
          maxLength: 6,
        }),
        fc.integer({ min: 1, max: 50 }),
        async (flights, crashes, readBatch) => {
          const dir = mkdtempSync(join(tmpdir(), "trb-speed-"));
          const stream = new SqliteStream(join(dir, "stream.db"), { inProcess: true });
          const catalog = new SqliteCatalog(join(dir, "catalog.db"));
          try {
            await stream.open({
              name: "flights",
              dedupWindowMs: 60_000,
              dedupMaxIds: 1000,
              retainMs: 0,
            });
            for (let i = 0; i < flights.length; i += 37) {
              await stream.append(
                "flights",
                flights
                  .slice(i, i + 37)
                  .map((f) => ({ id: f.id, time: f.time, data: JSON.stringify(record(f)) })),
              );
            }
            const open = async (): Promise<SpeedView> => {
              const v = new SpeedView({ node, stream, catalog, log, readBatch });
              await v.prepare();
              return v;
            };
            let view = await open();
            // Each crash: some steps, maybe a checkpoint, then the process dies (no stop, no
            // final checkpoint) and a new one restarts from the last checkpoint.
            for (const crash of crashes) {
              for (let s = 0; s < crash.steps; s++) await view.step();
              if (crash.checkpoint) await view.checkpoint();
              view = await open();
            }
            while ((await view.step()) > 0);
            await view.checkpoint();
            const expected = reference(flights);
            assert.deepEqual(view.aggregator.rows(), expected.rows);
            assert.equal(view.late, expected.late);
            // A restart after the last checkpoint holds the same state.
            const restarted = await open();
            assert.deepEqual(restarted.aggregator.rows(), expected.rows);
            assert.equal(restarted.position, await stream.end("flights"));
          } finally {
            await stream.close();
            await catalog.close();
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  test("run() consumes in the background and catchUp() waits for what was appended", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trb-speed-"));
    const stream = new SqliteStream(join(dir, "stream.db"), { inProcess: true });
    const catalog = new SqliteCatalog(join(dir, "catalog.db"));
    const view = new SpeedView({ node, stream, catalog, log, checkpointMs: 50 });
    try {
      await stream.open({ name: "flights", dedupWindowMs: 60_000, dedupMaxIds: 1000, retainMs: 0 });
      await view.prepare();
      view.run();
      const f: Flight = { id: "A", time: BASE, delay: 5, origin: "SFO", destination: "JFK" };
      await stream.append("flights", [{ id: f.id, time: f.time, data: JSON.stringify(record(f)) }]);
      await view.catchUp();
      assert.deepEqual(
        view.aggregator.rows().map((r) => r.values[0]),
        [1],
      );
      await view.stop();
      const cp = await catalog.speedCheckpoint("v");
      assert.equal(cp?.position, 2);
    } finally {
      await stream.close();
      await catalog.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("with a speed store, a stale process is fenced: it reloads the newer checkpoint, nothing counts twice", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trb-speed-"));
    const stream = new SqliteStream(join(dir, "stream.db"), { inProcess: true });
    const catalog = new SqliteCatalog(join(dir, "catalog.db"));
    const store = new MemorySpeedStore();
    try {
      await stream.open({ name: "flights", dedupWindowMs: 60_000, dedupMaxIds: 1000, retainMs: 0 });
      const flights: Flight[] = Array.from({ length: 90 }, (_, i) => ({
        id: `Z${i}`,
        time: BASE + i * 60_000,
        delay: i % 20,
        origin: ["SFO", "LAX"][i % 2]!,
        destination: "JFK",
      }));
      await stream.append(
        "flights",
        flights.map((f) => ({ id: f.id, time: f.time, data: JSON.stringify(record(f)) })),
      );
      const open = async (): Promise<SpeedView> => {
        const v = new SpeedView({
          node,
          stream,
          catalog,
          log,
          readBatch: 30,
          store: { speed: store, shard: "0" },
        });
        await v.prepare();
        return v;
      };
      // A checkpoints 30 records; B (a restart while A still runs) takes over and goes to the end.
      const a = await open();
      await a.step();
      await a.checkpoint();
      const b = await open();
      while ((await b.step()) > 0);
      await b.checkpoint();
      assert.equal(b.position, 91);
      // A, stale, applies more and checkpoints: refused, it reloads B's checkpoint instead.
      await a.step();
      await a.checkpoint();
      assert.equal(a.position, 91, "A continues from B's checkpoint");
      assert.equal((await store.loadShard(node.name, "0"))?.position, 91, "B's checkpoint stands");
      while ((await a.step()) > 0);
      await a.checkpoint();
      assert.deepEqual(a.aggregator.rows(), reference(flights).rows);
    } finally {
      await stream.close();
      await catalog.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
