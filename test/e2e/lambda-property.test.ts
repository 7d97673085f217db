// The lambda architecture's promise as one property: for any event sequence (out of order, late,
// very late), any crashes of the speed layer and any batch watermark, the merged view equals a
// full recompute, and events beyond the allowed lateness appear once the batch covers their day.
// Real components in one process: the collector, the SQLite stream, the land stage, the catalog,
// the batch engine, the speed layer (crashed by abandoning it without a checkpoint), GET
// /v1/views's queryView and SQL view.<name>.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { pino } from "pino";
import { openEmbeddedBackends } from "../../src/backends/registry.js";
import { BatchEngine, dayRange, viewBatchUntil } from "../../src/batch/index.js";
import { Collector, deadLetterStream } from "../../src/collect/index.js";
import { loadPipeline } from "../../src/config/index.js";
import { LandStage } from "../../src/land/index.js";
import { QueryEngine, ViewStateCache, queryView } from "../../src/serve/index.js";
import { SpeedView } from "../../src/speed/index.js";
import { compileViews } from "../../src/views/index.js";
import { FLIGHTS_STREAM, createProject } from "./harness.js";

const log = pino({ level: "silent" });
const BASE = Date.parse("2001-01-01T00:00:00Z");
const DAYS = ["2001-01-01", "2001-01-02", "2001-01-03"];
const LATENESS_MIN = 30;

const CONFIG = {
  name: "lambda-property",
  streams: { flights: FLIGHTS_STREAM },
  lake: { flush: { max_bytes: "16MiB", max_age: "60s" } },
  views: {
    departures: {
      stream: "flights",
      dimensions: ["origin"],
      allowed_lateness: `${LATENESS_MIN}m`,
      measures: {
        flights: "count",
        total_delay: "sum(delay)",
        min_delay: "min(delay)",
        max_delay: "max(delay)",
        avg_delay: "avg(delay)",
        destinations: "count_distinct(destination)",
        p90_delay: "p90(delay)",
      },
    },
  },
};

interface Flight {
  readonly flight_id: string;
  readonly date: string;
  readonly delay: number | null;
  readonly distance: number;
  readonly origin: string;
  readonly destination: string;
}

/** What happens after a chunk of events is sent. */
interface Step {
  /** Speed steps taken (each reads at most `readBatch` records). */
  readonly speedSteps: number;
  readonly checkpoint: boolean;
  /** The speed layer dies: no stop, no final checkpoint; a new one restarts from the last checkpoint. */
  readonly crash: boolean;
  /** Land and build the view's days up to this index (-1: no batch run now). */
  readonly batchThrough: number;
}

/** Events drifting forward over three days; some a little behind, some hours behind (very late). */
const flightsArb = fc
  .array(
    fc.record({
      step: fc.integer({ min: 0, max: 40 }),
      behind: fc.oneof(
        { weight: 6, arbitrary: fc.constant(0) },
        { weight: 3, arbitrary: fc.integer({ min: 0, max: LATENESS_MIN }) },
        { weight: 1, arbitrary: fc.integer({ min: LATENESS_MIN + 1, max: 2000 }) },
      ),
      delay: fc.option(fc.integer({ min: -15, max: 240 }), { freq: 6 }),
      origin: fc.constantFrom("SFO", "LAX", "ORD"),
      destination: fc.constantFrom("JFK", "BOS", "SEA", "DEN"),
    }),
    { minLength: 20, maxLength: 250, size: "large" },
  )
  .map((xs) => {
    let minute = 0;
    return xs.map((x, i): Flight => {
      minute = Math.min(minute + x.step, 3 * 1440 - 1);
      const at = Math.max(0, minute - x.behind);
      return {
        flight_id: `F${i}`,
        date: new Date(BASE + at * 60_000).toISOString().slice(0, 19) + "Z",
        delay: x.delay,
        distance: 500,
        origin: x.origin,
        destination: x.destination,
      };
    });
  });

const stepArb: fc.Arbitrary<Step> = fc.record({
  speedSteps: fc.integer({ min: 0, max: 3 }),
  checkpoint: fc.boolean(),
  crash: fc.boolean(),
  batchThrough: fc.integer({ min: -3, max: 2 }).map((n) => Math.max(-1, n)),
});

type Row = (string | number | null)[];

/**
 * The view computed directly from events (no sketches, no states), as GET /v1/views lists it
 * without the layer column: bucket (ISO), origin, then the measures in declared order.
 */
function recompute(flights: readonly Flight[], grainMs: number): Row[] {
  const groups = new Map<string, Flight[]>();
  for (const f of flights) {
    const bucket = Math.floor(Date.parse(f.date) / grainMs) * grainMs;
    const key = `${new Date(bucket).toISOString()}|${f.origin}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups.keys()].sort().map((key) => {
    const fs = groups.get(key)!;
    const [bucket, origin] = key.split("|") as [string, string];
    const delays = fs.map((f) => f.delay).filter((d): d is number => d !== null);
    const sorted = [...delays].sort((a, b) => a - b);
    const sum = delays.reduce((a, b) => a + b, 0);
    const none = delays.length === 0;
    return [
      bucket,
      origin,
      fs.length,
      none ? null : sum,
      none ? null : sorted[0]!,
      none ? null : sorted[sorted.length - 1]!,
      none ? null : sum / delays.length,
      new Set(fs.map((f) => f.destination)).size,
      none ? null : sorted[Math.max(0, Math.ceil(0.9 * sorted.length) - 1)]!,
    ];
  });
}

/** The speed layer's rule, stated independently: late when older than the newest time so far minus the lateness. */
function accepted(flights: readonly Flight[]): Set<string> {
  const out = new Set<string>();
  let max = -Infinity;
  for (const f of flights) {
    const t = Date.parse(f.date);
    if (t < max - LATENESS_MIN * 60_000) continue;
    max = Math.max(max, t);
    out.add(f.flight_id);
  }
  return out;
}

describe("lambda views, end to end", () => {
  it("any arrivals, speed crashes and batch watermark: the merged view equals a recompute", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        flightsArb,
        fc.array(stepArb, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 60 }),
        async (flights, steps, readBatch) => {
          runs++;
          const project = createProject(CONFIG);
          const pipeline = loadPipeline(project.dir);
          const backends = openEmbeddedBackends(pipeline.dataDir, pipeline.lakeDir);
          const node = compileViews(pipeline).get("departures")!;
          const closers: (() => Promise<void> | void)[] = [];
          try {
            for (const name of ["flights", deadLetterStream("flights")])
              await backends.stream.open({
                name,
                dedupWindowMs: 600_000,
                dedupMaxIds: 100_000,
                retainMs: 0,
              });
            const collector = new Collector(pipeline.streams, backends.stream, pipeline.server);
            const land = await LandStage.start(pipeline, backends, log);
            closers.push(() => land.stop());
            const batch = await BatchEngine.create({ pipeline, ...backends, log });
            closers.push(() => batch.close());
            const engine = await QueryEngine.create({
              catalog: backends.catalog,
              lake: backends.lake,
              lakeDir: pipeline.lakeDir,
              tempDir: join(pipeline.dataDir, "duckdb-tmp"),
              memoryLimit: "256MB",
              maxRows: 100_000,
              timeoutMs: 30_000,
              maxConcurrent: 2,
            });
            closers.push(() => engine.close());
            const batchUntil = (): Promise<number> =>
              viewBatchUntil(backends.catalog, node, pipeline);
            const open = async (): Promise<SpeedView> => {
              const v = new SpeedView({
                node,
                stream: backends.stream,
                catalog: backends.catalog,
                log,
                readBatch,
                batchUntil,
              });
              await v.prepare();
              return v;
            };
            let speed = await open();
            await engine.attachViews([
              {
                node,
                fieldType: (f) => (f === "delay" ? "integer" : "string"),
                speed: () => speed.aggregator,
                batchUntil,
              },
            ]);
            const cache = new ViewStateCache(runs % 2 === 0 ? 50 : 250_000);
            const view = async (grain: "minute" | "hour"): Promise<Row[]> => {
              const answer = await queryView(
                node,
                { from: BASE - 86_400_000, to: BASE + 5 * 86_400_000, grain, where: new Map() },
                {
                  catalog: backends.catalog,
                  lake: backends.lake,
                  readRows: (sql) => engine.readRows(sql),
                  speedBuckets: () => speed.aggregator.buckets(),
                  batchUntil,
                  cache,
                },
              );
              return answer.rows as Row[];
            };
            /** Per day, how many of the events (a prefix) had been sent when it was last built. */
            const builtWith = new Map<string, number>();
            let sent = 0;
            const buildThrough = async (last: number): Promise<void> => {
              await land.flush();
              for (const d of DAYS.slice(0, last + 1)) builtWith.set(d, sent);
              const summary = await batch.run({
                trigger: "manual",
                days: dayRange(DAYS[0]!, DAYS[last]!),
              });
              assert.equal(summary?.run.status ?? "succeeded", "succeeded");
            };

            // Send the events in as many chunks as there are steps; after each, the step.
            const size = Math.ceil(flights.length / steps.length);
            let built = -1;
            for (const [i, step] of steps.entries()) {
              const chunk = flights.slice(i * size, (i + 1) * size);
              if (chunk.length > 0) {
                const results = await collector.ingest(
                  "flights",
                  chunk.map((value) => ({ value, size: JSON.stringify(value).length })),
                  "native",
                );
                assert.ok(results.every((r) => r.status === "stored"));
                sent += chunk.length;
              }
              for (let s = 0; s < step.speedSteps; s++) await speed.step();
              if (step.checkpoint) await speed.checkpoint();
              if (step.crash) speed = await open();
              if (step.batchThrough >= 0) {
                await buildThrough(step.batchThrough);
                built = Math.max(built, step.batchThrough);
              }
            }
            // Drain the speed layer; the last batch run may have left days stale (late data).
            while ((await speed.step()) > 0);
            await speed.checkpoint();

            // Any watermark: batch rows for the days it built, speed rows for the rest.
            const cut = await batchUntil();
            if (built < 0)
              assert.equal(cut, -Infinity, "no batch run: the speed layer answers all");
            else
              assert.ok(
                DAYS.slice(0, built + 1).some(
                  (d) => Date.parse(`${d}T00:00:00Z`) + 86_400_000 === cut,
                ),
                `the batch watermark ends a built day (${new Date(cut).toISOString()})`,
              );
            const ok = accepted(flights);
            const strip = (rows: Row[]): Row[] => rows.map((r) => r.slice(0, -1));
            const check = async (expected: readonly Flight[], what: string): Promise<void> => {
              const minute = await view("minute");
              assert.deepEqual(strip(minute), recompute(expected, 60_000), `${what}: minute grain`);
              for (const r of minute)
                assert.equal(r[r.length - 1], Date.parse(String(r[0])) < cut ? "batch" : "speed");
              assert.deepEqual(
                strip(await view("hour")),
                recompute(expected, 3_600_000),
                `${what}: hour grain`,
              );
              const sql = await engine.query(
                "SELECT strftime(bucket, '%Y-%m-%dT%H:%M:%S.000Z') AS bucket, * EXCLUDE (bucket) FROM view.departures ORDER BY bucket, origin",
              );
              assert.deepEqual(sql.rows, minute, `${what}: SQL view.departures`);
            };
            // The scheduler's judgement: days that got data after their build turn stale. They
            // still answer with what they were built from (the speed layer evicted those buckets).
            await batch.markStale();
            assert.equal(await batchUntil(), cut, "a stale day does not move the cut back");
            await check(
              flights.filter((f, i) => {
                if (Date.parse(f.date) >= cut) return ok.has(f.flight_id);
                return i < (builtWith.get(f.date.slice(0, 10)) ?? 0);
              }),
              "stale days",
            );
            // A repair rebuilds them: the batch side is then complete for the days it covers.
            if (built >= 0) await buildThrough(built);
            await check(
              flights.filter((f) => (Date.parse(f.date) < cut ? true : ok.has(f.flight_id))),
              "repaired",
            );

            // Late events are never lost: once the batch covers every day, the view is everything.
            await buildThrough(DAYS.length - 1);
            await speed.checkpoint();
            assert.deepEqual(strip(await view("minute")), recompute(flights, 60_000), "all built");
            // And the speed layer holds nothing the batch layer covers (memory stays bounded).
            assert.equal(speed.aggregator.size, 0);
          } finally {
            for (const close of closers.reverse()) await close();
            await backends.stream.close();
            await backends.catalog.close();
            project.cleanup();
          }
        },
      ),
      {
        numRuns: Number(process.env.LAMBDA_RUNS ?? 12),
        includeErrorInReport: true,
        // Each run builds a lake: report the first counterexample rather than shrink for minutes.
        endOnFailure: true,
      },
    );
  });
});
