// Case http_to_stream: POST /v1/streams/{stream}/events to a durable ack, beside a bare Node server
// that parses the same bodies and commits them with the same fsync'd group commit.
//
// Processes: the server under test runs alone in a child process pinned to CPU 1; the load
// generator (autocannon, or the paced open-loop generator) runs in another child pinned to CPU 0;
// this driver only starts them and samples the server's RSS from /proc. BENCH_PIN=0 disables pinning.
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ROOT,
  benchSeconds,
  boundMetric,
  buildForBench,
  canPin,
  checkMetric,
  cpuOf,
  mib,
  ratioMetric,
  rssOf,
  runChild,
  sampleRss,
  spawnChild,
  type BenchCase,
  type Child,
  type Metric,
} from "../../harness.js";
import { STREAM, WRITE_KEY } from "../../flights.js";
import type { BaselineOptions } from "./baseline-server.js";
import { EVENTS_PER_REQUEST, type Mode } from "./bodies.js";
import type { LoadArgs, LoadSummary } from "./load.js";
import type { PacedArgs, PacedSummary } from "./paced-load.js";
import type { ServerHello } from "./tributary-server.js";

const HERE = join(ROOT, "bench", "cases", "http_to_stream");
const PIN = process.env.BENCH_PIN !== "0" && canPin();
const SERVER_CPUS = PIN ? "1" : undefined;
const LOAD_CPUS = PIN ? "0" : undefined;
/** Closed-loop connections of the peak runs. */
const CONNECTIONS: Record<Mode, number> = { batched: 32, single: 64 };
/** Fraction of Tributary's peak request rate at which ack latency is measured. */
const LATENCY_LOAD = 0.8;
/** The overload run: a small in-flight budget and many more connections than the peak runs. */
const OVERLOAD = { maxInflight: "256KiB", connections: 512 };

type Server = Child<ServerHello>;

interface ServerRuns {
  peak: LoadSummary;
  /** Events the server stored during the peak run (from its own counters), to check the acks. */
  storedDuringPeak: number | null;
  /** Server CPU seconds during the peak run: every thread, and the main (HTTP) thread alone. */
  peakCpu: { total: number; main: number } | null;
  autocannonAt80?: LoadSummary;
  pacedAt80: PacedSummary;
  peakRssBytes: number;
}

/**
 * What runs in Tributary's process. `collect`: collect and serve, no land stage (what the
 * baseline does: parse, append, fsync, ack), the configuration the goals are checked on.
 * `full`: every stage of `tributary up`, the land stage writing Parquet on the same pinned core.
 */
type Stack = "collect" | "full";

/** Starts the server under test (Tributary or the baseline) on a fresh temp project. */
async function startServer(
  kind: "tributary" | "baseline",
  project: object = {},
  stack: Stack = "collect",
): Promise<Server> {
  const entry = join(HERE, kind === "tributary" ? "tributary-server.ts" : "baseline-server.ts");
  const flags =
    kind === "tributary" && process.env.BENCH_PROFILE === "1"
      ? [
          "--cpu-prof",
          "--cpu-prof-dir",
          process.env.BENCH_PROFILE_DIR ?? join(tmpdir(), "tributary-bench-profiles"),
        ]
      : [];
  const arg: BaselineOptions | object =
    kind === "baseline"
      ? { store: process.env.BENCH_BASELINE_STORE ?? "sqlite" }
      : { ...project, land: stack === "full" };
  return timed(`start ${kind}`, () =>
    spawnChild<ServerHello>(entry, arg, { cpus: SERVER_CPUS, nodeFlags: flags }),
  );
}

function autocannon(args: LoadArgs): Promise<LoadSummary> {
  return timed(
    `autocannon ${args.mode} c=${args.connections}${args.overallRate ? ` -R ${Math.round(args.overallRate)}` : ""}`,
    () => runChild<LoadSummary>(join(HERE, "load.ts"), args, { cpus: LOAD_CPUS }),
  );
}

function paced(args: PacedArgs): Promise<PacedSummary> {
  return timed(`paced ${args.mode} ${Math.round(args.rate)} req/s`, () =>
    runChild<PacedSummary>(join(HERE, "paced-load.ts"), args, { cpus: LOAD_CPUS }),
  );
}

/** Runs a phase and logs how long it took (to stderr), so a slow harness shows where. */
async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const out = await fn();
  process.stderr.write(`    ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return out;
}

/** Events a server has stored so far, from its own counters. */
async function storedCount(kind: "tributary" | "baseline", url: string): Promise<number | null> {
  try {
    if (kind === "baseline")
      return ((await (await fetch(`${url}/stats`)).json()) as { stored: number }).stored;
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = new RegExp(
      `^tributary_collect_events_emitted_total\\{stream="${STREAM}"\\} (\\d+)`,
      "m",
    ).exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return null;
  }
}

/** Peak, then latency at `rate` (default: 80% of this server's own peak). */
async function measure(
  kind: "tributary" | "baseline",
  mode: Mode,
  seconds: number,
  rate?: number,
  stack: Stack = "collect",
): Promise<ServerRuns> {
  const server = await startServer(kind, {}, stack);
  const url = server.hello.url;
  try {
    const connections = CONNECTIONS[mode];
    await autocannon({ url, mode, seconds: Math.min(3, seconds), connections });
    const before = await storedCount(kind, url);
    const cpu0 = cpuOf(server.pid);
    const peak = await autocannon({ url, mode, seconds, connections });
    const cpu1 = cpuOf(server.pid);
    const after = await storedCount(kind, url);
    const target = rate ?? LATENCY_LOAD * peak.okPerSec;
    const latencyConnections = Math.max(connections, 64);
    const autocannonAt80 =
      kind === "tributary" && stack === "collect"
        ? await autocannon({
            url,
            mode,
            seconds,
            connections: latencyConnections,
            overallRate: target,
          })
        : undefined;
    const pacedAt80 = await paced({
      url,
      mode,
      seconds,
      rate: target,
      connections: latencyConnections,
    });
    return {
      peak,
      storedDuringPeak: before !== null && after !== null ? after - before : null,
      peakCpu:
        cpu0 && cpu1 ? { total: cpu1.total - cpu0.total, main: cpu1.main - cpu0.main } : null,
      ...(autocannonAt80 ? { autocannonAt80 } : {}),
      pacedAt80,
      peakRssBytes: rssOf(server.pid)?.peak ?? 0,
    };
  } finally {
    await server.stop();
  }
}

/** What the overload run records. */
interface OverloadRun {
  readonly maxInflight: string;
  readonly connections: number;
  readonly load: LoadSummary;
  readonly maxRssBytes: number;
  readonly peakRssBytes: number;
  readonly rssSamplesMiB: number[];
  readonly healthyAfter: boolean;
  readonly recoverySeconds: number;
}

/** Far more load than the server can take, with a small in-flight budget. */
async function overload(seconds: number): Promise<OverloadRun> {
  const server = await startServer("tributary", { maxInflight: OVERLOAD.maxInflight }, "full");
  const url = server.hello.url;
  try {
    const sampler = sampleRss(server.pid);
    const load = await autocannon({
      url,
      mode: "batched",
      seconds,
      connections: OVERLOAD.connections,
      trackResponses: true,
    });
    const rss = sampler.stop();
    // Serving again after the storm: how long until /healthz answers 200, then one normal request.
    const ended = performance.now();
    let health = 0;
    while (health !== 200 && performance.now() - ended < 30_000) {
      health = await fetch(`${url}/healthz`)
        .then((r) => r.status)
        .catch(() => 0);
      if (health !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    const recoverySeconds = (performance.now() - ended) / 1000;
    const one = await fetch(`${url}/v1/streams/${STREAM}/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${WRITE_KEY.secret}`, "content-type": "application/json" },
      body: JSON.stringify([
        {
          flight_id: "after-overload",
          date: "2001-01-15T08:00:00Z",
          origin: "SFO",
          destination: "LAX",
        },
      ]),
    })
      .then((r) => r.status)
      .catch(() => 0);
    return {
      maxInflight: OVERLOAD.maxInflight,
      connections: OVERLOAD.connections,
      load,
      maxRssBytes: rss.maxRss,
      peakRssBytes: rss.peak,
      rssSamplesMiB: downsample(
        rss.samples.map((b) => Math.round(mib(b))),
        40,
      ),
      healthyAfter: health === 200 && one === 200,
      recoverySeconds,
    };
  } finally {
    await server.stop();
  }
}

function downsample(values: number[], n: number): number[] {
  if (values.length <= n) return values;
  const step = values.length / n;
  return Array.from({ length: n }, (_, i) => values[Math.floor(i * step)]!);
}

/** The http_to_stream case. */
export const httpToStream: BenchCase = {
  name: "http_to_stream",
  async run() {
    const seconds = benchSeconds(10);
    await timed("compile src/ and bench/ for the child processes", async () => buildForBench());
    const modes: Mode[] = ["batched", "single"];
    const runs: Record<string, { tributary: ServerRuns; baseline: ServerRuns }> = {};
    for (const mode of modes) {
      const tributary = await measure("tributary", mode, seconds);
      const rate = LATENCY_LOAD * tributary.peak.okPerSec;
      const baseline = await measure("baseline", mode, seconds, rate);
      runs[mode] = { tributary, baseline };
      log(mode, tributary, baseline);
    }
    // Every stage in one process: the land stage shares the pinned core (informational; its own
    // throughput is the stream_to_lake case).
    const full = await measure("tributary", "batched", seconds, undefined, "full");
    process.stderr.write(
      `  http_to_stream batched, every stage: ${Math.round(full.peak.eventsPerSec / 1000)}k ev/s; paced p99 ${full.pacedAt80.latencyMs.p99.toFixed(1)} ms\n`,
    );
    const over = await overload(seconds);
    const ol = over.load;
    const rejected = ol.rejected.withRetryAfter + ol.rejected.withoutRetryAfter;

    const metrics: Metric[] = [];
    const notes: string[] = [];
    for (const mode of modes) {
      const { tributary: t, baseline: b } = runs[mode]!;
      const label =
        mode === "batched"
          ? "batched (100 events of ~200 B per request)"
          : "single event per request";
      metrics.push(
        ratioMetric(
          `peak throughput, ${label}`,
          "events/s",
          t.peak.eventsPerSec,
          b.peak.eventsPerSec,
          0.5,
        ),
      );
      metrics.push(
        boundMetric(
          `ack p50 at 80% of peak, ${mode} (paced)`,
          "ms",
          t.pacedAt80.latencyMs.p50,
          undefined,
          b.pacedAt80.latencyMs.p50,
        ),
      );
      metrics.push(
        boundMetric(
          `ack p99 at 80% of peak, ${mode} (paced)`,
          "ms",
          t.pacedAt80.latencyMs.p99,
          25,
          b.pacedAt80.latencyMs.p99,
        ),
      );
      const perEvent = (r: ServerRuns): number | null =>
        r.peakCpu && r.storedDuringPeak ? (r.peakCpu.total * 1e6) / r.storedDuringPeak : null;
      metrics.push(
        ratioMetric(
          `server CPU per event, ${mode} (all threads; lower is better)`,
          "µs",
          perEvent(t),
          perEvent(b),
        ),
      );
      if (t.autocannonAt80) {
        metrics.push(
          boundMetric(
            `ack p50 at 80% of peak, ${mode} (autocannon -R)`,
            "ms",
            t.autocannonAt80.latencyMs.p50,
            undefined,
          ),
        );
        metrics.push(
          boundMetric(
            `ack p99 at 80% of peak, ${mode} (autocannon -R)`,
            "ms",
            t.autocannonAt80.latencyMs.p99,
            25,
          ),
        );
      }
      for (const [who, r] of [
        ["Tributary", t],
        ["baseline", b],
      ] as const) {
        const expected = r.peak.ok * EVENTS_PER_REQUEST[mode];
        if (r.storedDuringPeak !== null && r.storedDuringPeak < expected) {
          notes.push(
            `${who} ${mode}: ${expected} events acknowledged but ${r.storedDuringPeak} counted as stored during the peak run.`,
          );
        }
        if (r.peak.cpuSeconds > 0.85 * r.peak.seconds) {
          notes.push(
            `${who} ${mode}: the load generator used ${r.peak.cpuSeconds.toFixed(1)} CPU s in ${r.peak.seconds} s: it may have been the limit.`,
          );
        }
        if (r.pacedAt80.achievedRate < 0.95 * r.pacedAt80.targetRate) {
          notes.push(
            `${who} ${mode}: the paced run reached ${Math.round(r.pacedAt80.achievedRate)} of ${Math.round(r.pacedAt80.targetRate)} requests/s.`,
          );
        }
      }
    }
    metrics.push(
      checkMetric(
        "every stage in one process (land stage on the same core): peak, batched",
        "events/s",
        full.peak.eventsPerSec,
        "none (information)",
        null,
      ),
    );
    metrics.push(
      boundMetric(
        "every stage in one process: ack p99 at 80% of its peak, batched (paced)",
        "ms",
        full.pacedAt80.latencyMs.p99,
        25,
      ),
    );
    const peakRss = Math.max(
      ...modes.map((m) => runs[m]!.tributary.peakRssBytes),
      full.peakRssBytes,
      over.peakRssBytes,
    );
    const basePeakRss = Math.max(...modes.map((m) => runs[m]!.baseline.peakRssBytes));
    metrics.push(
      boundMetric(
        "peak RSS of the server process (all runs)",
        "MiB",
        mib(peakRss),
        512,
        mib(basePeakRss),
      ),
    );
    metrics.push(
      checkMetric(
        "overload: 429/503 answers carrying Retry-After",
        "%",
        rejected > 0 ? (100 * ol.rejected.withRetryAfter) / rejected : null,
        "100% (and some rejected)",
        rejected > 0 && ol.rejected.withoutRetryAfter === 0,
      ),
    );
    metrics.push(
      boundMetric("overload: max RSS during the run", "MiB", mib(over.maxRssBytes), 512),
    );
    metrics.push(
      checkMetric(
        "overload: events/s still accepted",
        "events/s",
        ol.eventsPerSec,
        "none (information)",
        null,
      ),
    );
    metrics.push(
      checkMetric(
        "overload: seconds until /healthz is 200 again",
        "s",
        over.recoverySeconds,
        "serves again (healthz, 1 event)",
        over.healthyAfter,
      ),
    );
    if (ol.errors > 0 || ol.timeouts > 0) {
      notes.push(
        `overload: ${ol.errors} connection errors and ${ol.timeouts} timeouts at ${OVERLOAD.connections} connections.`,
      );
    }
    notes.push(
      PIN
        ? "CPU split: server process pinned to CPU 1 (taskset), load generator to CPU 0; the driver sleeps."
        : "CPU split: none (BENCH_PIN=0 or no taskset); server and load generator share both CPUs.",
    );
    return {
      measures:
        "POST /v1/streams/flights/events (JSON array, Bearer write key) answered once durable, on `startNode()` without the land stage (collect and serve; no replay) in its own process; events ~200 B with unique ids. The rows 'every stage in one process' run `tributary up` with the land stage writing Parquet on the same core.",
      baseline: `bare node:http server: JSON.parse of the same bodies, every event appended with an fsync'd group commit (${
        process.env.BENCH_BASELINE_STORE === "file"
          ? "NDJSON file append + fdatasync per event-loop turn"
          : "better-sqlite3 WAL synchronous=FULL, one transaction per event-loop turn, one row per request holding its events as NDJSON, like the stream log's layout"
      }), 200 after commit.`,
      metrics,
      details: {
        seconds,
        connections: CONNECTIONS,
        latencyLoad: LATENCY_LOAD,
        pinned: PIN,
        runs,
        full,
        overload: over,
      },
      notes,
    };
  },
};

function log(mode: Mode, t: ServerRuns, b: ServerRuns): void {
  const k = (v: number): string => `${Math.round(v / 1000)}k`;
  process.stderr.write(
    `  http_to_stream ${mode}: tributary ${k(t.peak.eventsPerSec)} ev/s, baseline ${k(b.peak.eventsPerSec)} ev/s; ` +
      `paced p99 ${t.pacedAt80.latencyMs.p99.toFixed(1)} ms vs ${b.pacedAt80.latencyMs.p99.toFixed(1)} ms; ` +
      `RSS ${Math.round(mib(t.peakRssBytes))} MiB\n`,
  );
}
