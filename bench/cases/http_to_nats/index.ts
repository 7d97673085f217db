// Case http_to_nats: http_to_stream on the NATS JetStream backend — POST /v1/streams/{stream}/events
// answered once JetStream acknowledged every event — beside a bare publish loop of the same
// payloads with the same client and acks; and collect scale-out, 1 versus 2 processes.
//
// Processes: Tributary runs the collect role only (`startNode({ roles: ["collect"] })`, backends.stream
// nats) in a child pinned to CPU 1; autocannon in a child pinned to CPU 0; the baseline publish loop
// in a child pinned to CPU 1. nats-server (the machine's, 127.0.0.1:4222) is not pinned: both sides
// share it alike. Scale-out: two collect processes (CPU 1 and CPU 0) under two load generators.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  ROOT,
  benchSeconds,
  boundMetric,
  buildForBench,
  canPin,
  cpuOf,
  ratioMetric,
  runChild,
  spawnChild,
  type BenchCase,
  type Child,
} from "../../harness.js";
import type { LoadArgs, LoadSummary } from "../http_to_stream/load.js";
import type { ServerHello } from "../http_to_stream/tributary-server.js";
import type { NatsBaselineArgs, NatsBaselineSummary } from "./baseline.js";

const HERE = join(ROOT, "bench", "cases", "http_to_nats");
const HTTP = join(ROOT, "bench", "cases", "http_to_stream");
const PIN = process.env.BENCH_PIN !== "0" && canPin();
const SERVERS = process.env.BENCH_NATS ?? "nats://127.0.0.1:4222";
/** Closed-loop connections (HTTP) and publishers (baseline): as http_to_stream's batched runs. */
const CONNECTIONS = 32;
/** The flights stream's dedup window (bench/flights.ts: 10m). */
const DEDUP_WINDOW_MS = 600_000;

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const out = await fn();
  process.stderr.write(`    ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return out;
}

/** Deletes the JetStream streams (and KV buckets) whose names hold `prefix`. */
async function dropStreams(prefix: string): Promise<void> {
  const nc = await connect({ servers: SERVERS });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const si of jsm.streams.list())
      if (si.config.name.includes(prefix)) await jsm.streams.delete(si.config.name);
  } finally {
    await nc.close();
  }
}

/** Messages stored in the JetStream streams whose names hold `prefix`. */
async function storedMessages(prefix: string): Promise<number> {
  const nc = await connect({ servers: SERVERS });
  try {
    const jsm = await jetstreamManager(nc);
    let n = 0;
    for await (const si of jsm.streams.list())
      if (si.config.name.includes(prefix) && !si.config.name.startsWith("KV_"))
        n += si.state.messages;
    return n;
  } finally {
    await nc.close();
  }
}

function collectServer(prefix: string, cpus: string | undefined): Promise<Child<ServerHello>> {
  return spawnChild<ServerHello>(
    join(HTTP, "tributary-server.ts"),
    {
      roles: ["collect"],
      backends: { stream: { kind: "nats", servers: [SERVERS], prefix } },
    },
    { cpus },
  );
}

function load(args: LoadArgs, cpus: string | undefined): Promise<LoadSummary> {
  return runChild<LoadSummary>(join(HTTP, "load.ts"), args, { cpus });
}

export const httpToNats: BenchCase = {
  name: "http_to_nats",
  async run() {
    buildForBench();
    const seconds = benchSeconds(10);
    const prefix = `bench-${randomBytes(3).toString("hex")}`;
    const notes: string[] = [];

    // Tributary, collect role, one process.
    const server = await timed("start collect on NATS", () =>
      collectServer(prefix, PIN ? "1" : undefined),
    );
    let peak: LoadSummary;
    let cpu: { total: number; main: number } | null;
    let stored: number;
    try {
      const url = server.hello.url;
      await timed("warm-up", () =>
        load({ url, mode: "batched", seconds: 3, connections: CONNECTIONS }, PIN ? "0" : undefined),
      );
      const before = await storedMessages(prefix);
      const cpu0 = cpuOf(server.pid);
      peak = await timed(`autocannon batched c=${CONNECTIONS}`, () =>
        load({ url, mode: "batched", seconds, connections: CONNECTIONS }, PIN ? "0" : undefined),
      );
      const cpu1 = cpuOf(server.pid);
      cpu = cpu0 && cpu1 ? { total: cpu1.total - cpu0.total, main: cpu1.main - cpu0.main } : null;
      stored = (await storedMessages(prefix)) - before;
    } finally {
      await server.stop();
      await dropStreams(prefix);
    }
    // Every acknowledged event is stored; requests still in flight when the load stopped (at most
    // one per connection) may be stored without their answer having been counted.
    const acked = peak.ok * 100;
    if (stored < acked || stored > acked + CONNECTIONS * 100)
      notes.push(`JetStream holds ${stored} new messages for ${acked} acknowledged events`);

    // The bare publish loops, same CPU: the client's js.publish, and pipelined as the backend does.
    const baseline = (mode: NatsBaselineArgs["mode"]): Promise<NatsBaselineSummary> =>
      timed(`bare publish loop (${mode}), ${CONNECTIONS} publishers`, () =>
        runChild<NatsBaselineSummary>(
          join(HERE, "baseline.ts"),
          {
            servers: SERVERS,
            stream: `TRB_${prefix}_BASELINE_${mode}`,
            seconds,
            publishers: CONNECTIONS,
            dedupWindowMs: DEDUP_WINDOW_MS,
            mode,
          } satisfies NatsBaselineArgs,
          { cpus: PIN ? "1" : undefined },
        ),
      );
    const base = await baseline("publish");
    const piped = await baseline("pipelined");

    // Scale-out: two collect processes, one per core, each under its own load generator (which
    // shares that core's neighbour): the machine has 2 cores, so this cannot double.
    const prefix2 = `${prefix}-x2`;
    const pair = await timed("start 2 collect processes", () =>
      Promise.all([
        collectServer(prefix2, PIN ? "1" : undefined),
        collectServer(prefix2, PIN ? "0" : undefined),
      ]),
    );
    let two: LoadSummary[];
    try {
      two = await timed("autocannon x2", () =>
        Promise.all(
          pair.map((s, i) =>
            load(
              { url: s.hello.url, mode: "batched", seconds, connections: CONNECTIONS / 2 },
              PIN ? String(1 - i) : undefined,
            ),
          ),
        ),
      );
    } finally {
      await Promise.all(pair.map((s) => s.stop()));
      await dropStreams(prefix2);
    }
    const twoEvents = two.reduce((s, l) => s + l.eventsPerSec, 0);

    return {
      measures: `POST /v1/streams/flights/events, 100 events (~200 B, unique ids) per request, answered once NATS JetStream acknowledged every event (backends.stream: nats, file storage, replicas 1, message ids = event ids), on a process running only the collect role pinned to one core; autocannon, ${CONNECTIONS} connections, ${seconds} s after a 3 s warm-up. Scale-out: 2 collect processes, 16 connections each.`,
      baseline: `a bare publish loop in Node with the same client (@nats-io/jetstream 3.4): the same request bodies parsed, each event published as one message with its id as the message id (js.publish, a request per event), the 100 acks of a batch awaited before the next; ${CONNECTIONS} concurrent publishers, pinned to the same core, same nats-server. A second loop publishes each batch pipelined (replies to one inbox), as the NATS backend does.`,
      metrics: [
        // The goal is held against the stronger loop: the backend's own technique, without HTTP.
        ratioMetric(
          "batched throughput, collect on NATS vs a pipelined publish loop",
          "events/s",
          peak.eventsPerSec,
          piped.eventsPerSec,
          0.8,
        ),
        ratioMetric(
          "the same vs a js.publish loop (a request per event: the client's plain API)",
          "events/s",
          peak.eventsPerSec,
          base.eventsPerSec,
        ),
        boundMetric("ack latency p50, batched", "ms", peak.latencyMs.p50, undefined),
        boundMetric("ack latency p99, batched", "ms", peak.latencyMs.p99, undefined),
        ratioMetric(
          "scale-out: 2 collect processes vs 1 (2 cores: cannot double)",
          "events/s",
          twoEvents,
          peak.eventsPerSec,
        ),
      ],
      details: {
        seconds,
        connections: CONNECTIONS,
        tributary: { peak, cpuSeconds: cpu, storedDuringPeak: stored },
        baseline: base,
        pipelinedBaseline: piped,
        scaleOut: two,
      },
      notes,
    };
  },
};
