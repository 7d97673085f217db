// Case stream_to_speed: how soon an acked event is visible in GET /v1/views/<view> (the speed
// layer), under background load at half the embedded mode's peak; and the speed layer's per-event
// aggregation (ViewAggregator.add) beside a hand-written JavaScript Map window loop.
//
// Processes: the Tributary server (`tributary up`: collect, land, batch, speed, serve) runs alone in a
// child process pinned to CPU 1; the background load (http_to_stream's autocannon and paced
// generators) and the probe run in children pinned to CPU 0. The aggregation runs in this process.
import { join } from "node:path";
import {
  ROOT,
  benchSeconds,
  boundMetric,
  buildForBench,
  canPin,
  ratioMetric,
  rssOf,
  runChild,
  spawnChild,
  type BenchCase,
  type Metric,
} from "../../harness.js";
import type { LoadArgs, LoadSummary } from "../http_to_stream/load.js";
import type { PacedArgs, PacedSummary } from "../http_to_stream/paced-load.js";
import { departuresNode, makeEvents, runAggregator, runHandWritten } from "./aggregate.js";
import type { ProbeArgs, ProbeSummary } from "./probe.js";
import { ADMIN_KEY } from "./project.js";
import type { ViewServerHello } from "./server.js";

const HERE = join(ROOT, "bench", "cases", "stream_to_speed");
const HTTP = join(ROOT, "bench", "cases", "http_to_stream");
const PIN = process.env.BENCH_PIN !== "0" && canPin();
const SERVER_CPUS = PIN ? "1" : undefined;
const LOAD_CPUS = PIN ? "0" : undefined;
/** Fraction of the peak request rate the background load runs at. */
const LOAD_FRACTION = 0.5;
/** The background load's event times are 2001-01-15 08:00 + 0..99 minutes (bodies.ts): probes use the newest minute. */
const PROBE_TIME = Date.UTC(2001, 0, 15, 9, 39, 0);
const PROBE = { everyMs: 100, pollMs: 5, timeoutMs: 10_000 };
const REPEAT = 3;

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const out = await fn();
  process.stderr.write(`    ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return out;
}

function probe(url: string, seconds: number, prefix: string): Promise<ProbeSummary> {
  const args: ProbeArgs = { url, seconds, timeMs: PROBE_TIME, prefix, ...PROBE };
  return timed(`probe ${prefix} ${seconds} s`, () =>
    runChild<ProbeSummary>(join(HERE, "probe.ts"), args, { cpus: LOAD_CPUS }),
  );
}

/** Waits until everything accepted is landed and applied by the speed layer. */
async function flush(url: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/flush`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_KEY.secret}` },
  });
  if (res.status !== 200) throw new Error(`flush: ${res.status} ${await res.text()}`);
  return (performance.now() - started) / 1000;
}

async function freshness(seconds: number): Promise<{
  idle: ProbeSummary;
  peak: LoadSummary;
  flushSeconds: number;
  paced: PacedSummary;
  loaded: ProbeSummary;
  peakRssBytes: number;
}> {
  const server = await timed("start tributary", () =>
    spawnChild<ViewServerHello>(join(HERE, "server.ts"), {}, { cpus: SERVER_CPUS }),
  );
  const url = server.hello.url;
  try {
    // Without load: the floor (speed layer wake-up, view query, polling interval).
    const idle = await probe(url, 3, "I");
    // The embedded mode's peak, briefly (batched requests, as http_to_stream measures it).
    const loadArgs: LoadArgs = { url, mode: "batched", seconds: 3, connections: 32 };
    const peak = await timed("autocannon batched c=32 (peak)", () =>
      runChild<LoadSummary>(join(HTTP, "load.ts"), loadArgs, { cpus: LOAD_CPUS }),
    );
    const flushSeconds = await timed("flush (land + speed catch-up)", () => flush(url));
    const rate = LOAD_FRACTION * peak.okPerSec;
    const pacedArgs: PacedArgs = { url, mode: "batched", rate, seconds, connections: 64 };
    const [paced, loaded] = await Promise.all([
      timed(`paced batched ${Math.round(rate)} req/s`, () =>
        runChild<PacedSummary>(join(HTTP, "paced-load.ts"), pacedArgs, { cpus: LOAD_CPUS }),
      ),
      // Probes start once the load runs and stop before it ends.
      new Promise((r) => setTimeout(r, 1000)).then(() => probe(url, seconds - 2, "L")),
    ]);
    return {
      idle,
      peak,
      flushSeconds,
      paced,
      loaded,
      peakRssBytes: rssOf(server.pid)?.peak ?? 0,
    };
  } finally {
    await server.stop();
  }
}

function aggregation(n: number): {
  tributary: { add: number[]; finalize: number[] };
  baseline: { add: number[]; finalize: number[] };
  buckets: number;
  totals: { tributary: number; baseline: number };
} {
  const node = departuresNode();
  const { records, times } = makeEvents(n);
  // Warm-up: both loops compiled by the JIT before anything is timed.
  const warm = Math.min(n, 100_000);
  runAggregator(node, records.slice(0, warm), times.subarray(0, warm));
  runHandWritten(records.slice(0, warm), times.subarray(0, warm));
  const out = {
    tributary: { add: [] as number[], finalize: [] as number[] },
    baseline: { add: [] as number[], finalize: [] as number[] },
    buckets: 0,
    totals: { tributary: 0, baseline: 0 },
  };
  for (let r = 0; r < REPEAT; r++) {
    const b = runHandWritten(records, times);
    out.baseline.add.push(b.add);
    out.baseline.finalize.push(b.finalize);
    const t = runAggregator(node, records, times);
    out.tributary.add.push(t.add);
    out.tributary.finalize.push(t.finalize);
    out.buckets = t.buckets;
    out.totals = { tributary: t.total, baseline: b.total };
    process.stderr.write(
      `    aggregation run ${r + 1}: hand-written ${b.add.toFixed(2)} s, ViewAggregator ${t.add.toFixed(2)} s\n`,
    );
  }
  return out;
}

export const streamToSpeed: BenchCase = {
  name: "stream_to_speed",
  async run() {
    buildForBench();
    const seconds = Math.max(5, benchSeconds(10));
    const n = Number(process.env.BENCH_EVENTS) > 0 ? Number(process.env.BENCH_EVENTS) : 1_000_000;
    const agg = aggregation(n);
    const f = await freshness(seconds);
    const bestT = Math.min(...agg.tributary.add);
    const bestB = Math.min(...agg.baseline.add);
    const notes: string[] = [];
    if (agg.totals.tributary !== n || agg.totals.baseline !== n)
      notes.push(
        `aggregation: counted ${agg.totals.tributary} (Tributary) and ${agg.totals.baseline} (hand-written) of ${n} events`,
      );
    if (f.loaded.timedOut > 0 || f.loaded.failedSends > 0)
      notes.push(
        `freshness under load: ${f.loaded.timedOut} probes not visible within ${PROBE.timeoutMs / 1000} s, ${f.loaded.failedSends} probe sends failed (of ${f.loaded.probes})`,
      );
    const metrics: Metric[] = [
      boundMetric(
        `ack → visible in the view, p50, background load at ${LOAD_FRACTION * 100}% of peak`,
        "ms",
        f.loaded.freshnessMs.p50,
        50,
      ),
      boundMetric(
        `ack → visible in the view, p99, background load at ${LOAD_FRACTION * 100}% of peak`,
        "ms",
        f.loaded.freshnessMs.p99,
        250,
      ),
      boundMetric(
        "ack → visible, p50, no background load",
        "ms",
        f.idle.freshnessMs.p50,
        undefined,
      ),
      boundMetric(
        "ack → visible, p99, no background load",
        "ms",
        f.idle.freshnessMs.p99,
        undefined,
      ),
      boundMetric(
        "background load achieved (peak of every stage, batched: information)",
        "events/s",
        f.paced.eventsPerSec,
        undefined,
        f.peak.eventsPerSec,
      ),
      ratioMetric(
        `aggregation throughput, ${n.toLocaleString("en-US")} events (ViewAggregator.add vs Map loop, best of ${REPEAT})`,
        "events/s",
        n / bestT,
        n / bestB,
        0.5,
      ),
      boundMetric(
        "aggregation time per event (lower is better)",
        "ns",
        (bestT * 1e9) / n,
        undefined,
        (bestB * 1e9) / n,
      ),
    ];
    return {
      measures: `Freshness: a sampled event's time from its 200 ack (POST /v1/streams/flights/events) to the first GET /v1/views/departures answer (minute grain, the probe's own origin) that counts it, polled every ${PROBE.pollMs} ms, one probe every ${PROBE.everyMs} ms, on \`tributary up\` (collect, land, batch, speed, serve) pinned to one core, with paced batched background load at ${LOAD_FRACTION * 100}% of its own peak. Aggregation: ViewAggregator.add over ${n.toLocaleString("en-US")} parsed flights-like events (minute × origin; count, avg, p95, count_distinct) in the bench process.`,
      baseline:
        "Freshness has no baseline (bounded by the goal). Aggregation: a hand-written JavaScript Map keyed by minute|origin holding count, delay sum and count, every delay (sorted at the end for p95) and a Set of destinations, over the same events in the same process, alternating runs.",
      metrics,
      details: {
        aggregation: { events: n, ...agg },
        freshness: {
          ...f,
          idle: { ...f.idle, raw: undefined },
          loaded: { ...f.loaded, raw: f.loaded.raw.slice(0, 200) },
          peakRssMiB: f.peakRssBytes / 1024 / 1024,
        },
      },
      notes,
    };
  },
};
