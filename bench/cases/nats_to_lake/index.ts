// Case nats_to_lake: landing on the distributed backends — the land role reading a NATS JetStream
// stream of 2 partitions and committing Parquet files in the PostgreSQL catalog — with 1 versus 2
// land processes sharing the partitions (leases in the PostgreSQL job queue).
//
// The stream is filled first (the bench process publishes through the NATS backend), then the land
// processes start; the time is from their start until the catalog holds every partition's last
// position. Land processes are pinned one per core (1 process: CPU 1); nats-server and PostgreSQL
// are not pinned and serve both runs alike. The machine has 2 cores shared by all of it, so 2
// processes cannot double: the figure shows whether anything serializes them.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { NatsStream } from "../../../src/backends/nats/stream.js";
import { deadLetterStream } from "../../../src/collect/index.js";
import { STREAM, flightEvent } from "../../flights.js";
import {
  ROOT,
  buildForBench,
  canPin,
  ratioMetric,
  spawnChild,
  type BenchCase,
  type Child,
} from "../../harness.js";
import type { ServerHello } from "../http_to_stream/tributary-server.js";

const HTTP = join(ROOT, "bench", "cases", "http_to_stream");
const PIN = process.env.BENCH_PIN !== "0" && canPin();
const SERVERS = process.env.BENCH_NATS ?? "nats://127.0.0.1:4222";
const PG_URL = process.env.TRIBUTARY_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const PARTITIONS = 2;
const EVENTS = Number(process.env.BENCH_LAND_EVENTS ?? 400_000);
const SETTINGS = { dedupWindowMs: 600_000, dedupMaxIds: 1_000_000, retainMs: 0 };

interface LandRun {
  readonly processes: number;
  readonly seconds: number;
  readonly eventsPerSec: number;
  readonly files: number;
}

/** Fills the stream of `prefix` with EVENTS flights, 8 appends of 1,000 in flight. */
async function fill(prefix: string): Promise<number[]> {
  const stream = await NatsStream.open({ servers: [SERVERS], prefix, partitions: PARTITIONS });
  try {
    await stream.open({ name: STREAM, ...SETTINGS });
    await stream.open({ name: deadLetterStream(STREAM), ...SETTINGS });
    const start = Date.UTC(2001, 0, 1);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < EVENTS) {
        const from = next;
        next = Math.min(EVENTS, next + 1_000);
        const records = [];
        for (let i = from; i < next; i++) {
          const time = start + i * 1_000;
          const id = `L${i.toString().padStart(19, "0")}`;
          records.push({ id, time, data: JSON.stringify(flightEvent(i, id, time)) });
        }
        await stream.append(STREAM, records);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return await Promise.all(Array.from({ length: PARTITIONS }, (_, k) => stream.end(STREAM, k)));
  } finally {
    await stream.close();
  }
}

/** Land positions of the stream's partitions in the catalog (0 before the first commit). */
async function positions(client: pg.Client, schema: string): Promise<number[]> {
  const { rows } = await client.query<{ partition: number; position: string }>(
    `SELECT part AS partition, position FROM "${schema}".positions WHERE consumer = 'land' AND stream = $1`,
    [STREAM],
  );
  const out = Array.from({ length: PARTITIONS }, () => 0);
  for (const r of rows) out[r.partition] = Number(r.position);
  return out;
}

async function landRun(processes: number): Promise<LandRun> {
  const tag = randomBytes(3).toString("hex");
  const prefix = `bench-land-${tag}`;
  const schema = `trb_bench_land_${tag}`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  const children: Child<ServerHello>[] = [];
  try {
    const ends = await fill(prefix);
    const backends = {
      stream: { kind: "nats", servers: [SERVERS], prefix, partitions: PARTITIONS },
      catalog: { kind: "postgres", url: PG_URL, schema },
    };
    const started = performance.now();
    for (let i = 0; i < processes; i++)
      children.push(
        await spawnChild<ServerHello>(
          join(HTTP, "tributary-server.ts"),
          { roles: ["land"], backends, flushMaxBytes: "16MiB", flushMaxAge: "2s" },
          { cpus: PIN ? String(1 - (i % 2)) : undefined },
        ),
      );
    for (;;) {
      const at = await positions(client, schema);
      if (ends.every((end, k) => (at[k] ?? 0) >= end)) break;
      if (performance.now() - started > 600_000)
        throw new Error(`landing did not finish in 10 minutes: positions ${at}, ends ${ends}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM "${schema}".files`,
    );
    return { processes, seconds, eventsPerSec: EVENTS / seconds, files: Number(rows[0]!.n) };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.query(`DROP SCHEMA IF EXISTS "${schema}_jobs" CASCADE`);
    await client.end();
    const { connect } = await import("@nats-io/transport-node");
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const nc = await connect({ servers: SERVERS });
    const jsm = await jetstreamManager(nc);
    for await (const si of jsm.streams.list())
      if (si.config.name.includes(prefix)) await jsm.streams.delete(si.config.name);
    await nc.close();
  }
}

export const natsToLake: BenchCase = {
  name: "nats_to_lake",
  async run() {
    buildForBench();
    const one = await landRun(1);
    process.stderr.write(`    1 land process: ${one.eventsPerSec.toFixed(0)} events/s\n`);
    const two = await landRun(2);
    process.stderr.write(`    2 land processes: ${two.eventsPerSec.toFixed(0)} events/s\n`);
    return {
      measures: `${EVENTS} flights events (~330 B of JSON each) already in a NATS JetStream stream of ${PARTITIONS} partitions, landed as zstd Parquet (dt=/hour=) in a local lake and committed in the PostgreSQL catalog by \`tributary run land\` processes sharing the partitions; from the processes' start (start-up and lease acquisition included) until the catalog holds every partition's last position.`,
      baseline: "the same with one land process (it holds both partitions)",
      metrics: [
        ratioMetric(
          "scale-out: 2 land processes vs 1 (2 cores: cannot double)",
          "events/s",
          two.eventsPerSec,
          one.eventsPerSec,
        ),
      ],
      details: { events: EVENTS, partitions: PARTITIONS, one, two },
      notes: [],
    };
  },
};
