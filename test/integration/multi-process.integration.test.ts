// The whole pipeline as separate processes on loopback: 2 collect, 2 land, 2 speed, 2 batch
// workers, 1 scheduler and 1 serve, on NATS JetStream (2 partitions) + PostgreSQL (catalog, job
// queue, speed store) + an S3 bucket (s3rver). A slice of the real flights goes in through both
// collect processes; raw, every model and the lambda view then equal an embedded run over the
// same events.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startS3rver, type TestS3 } from "../../src/backends/s3/s3rver.test-util.js";
import {
  KEYS,
  FLIGHTS_STREAM,
  createProject,
  duckdb,
  sqlString,
  startTestNode,
  type ConfigTree,
  type TempProject,
} from "../e2e/harness.js";
import {
  NATS,
  PG_URL,
  ROOT,
  TEST_KEYS,
  deleteNatsStreams,
  dropSchemas,
  killed,
  runRoles,
  uniqueName,
  type RoleProcess,
} from "./support.js";

const FLIGHTS = join(ROOT, "node_modules", "vega-datasets", "data", "flights-3m.parquet");
const AIRPORTS = join(ROOT, "node_modules", "vega-datasets", "data", "airports.csv");
const DEMO_MODELS = join(ROOT, "examples", "flights", "models");
const ADMIN = { authorization: `Bearer ${KEYS.admin.secret}` };
const READER = { authorization: `Bearer ${KEYS.reader.secret}` };
/** Origins of the slice: busy airports, so every model and view has several rows per day. */
const ORIGINS = ["ATL", "ORD", "DFW", "LAX", "DEN", "SFO", "PHX", "LAS"];
/** The slice: three days of 2001; the batch clock (newest event day) builds the first two. */
const DAYS = ["2001-01-02", "2001-01-03", "2001-01-04"];

/** The demo's models and its airports seed, as project files. */
function demoFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const layer of readdirSync(DEMO_MODELS))
    for (const f of readdirSync(join(DEMO_MODELS, layer)))
      files[`models/${layer}/${f}`] = readFileSync(join(DEMO_MODELS, layer, f), "utf8");
  return files;
}

interface Flight {
  flight_id: string;
  date: string;
  delay: number;
  distance: number;
  origin: string;
  destination: string;
}

async function flightSlice(): Promise<Flight[]> {
  const rows = await duckdb(
    `SELECT printf('FL%07d', row_number() OVER (ORDER BY date, origin, destination, distance, delay)),
            strftime(date, '%Y-%m-%dT%H:%M:%SZ'), delay, distance, origin, destination
     FROM read_parquet(${sqlString(FLIGHTS)})
     WHERE date >= TIMESTAMP '${DAYS[0]}' AND date < TIMESTAMP '${DAYS[2]}' + INTERVAL 1 DAY
       AND origin IN (${ORIGINS.map(sqlString).join(", ")})
     ORDER BY date, 1`,
  );
  return rows.map(([flight_id, date, delay, distance, origin, destination]) => ({
    flight_id: String(flight_id),
    date: String(date),
    delay: Number(delay),
    distance: Number(distance),
    origin: String(origin),
    destination: String(destination),
  }));
}

/** The pipeline both runs share: the demo's stream fields, models, seed and view. */
function pipelineConfig(): ConfigTree {
  return {
    name: "multi-process-it",
    streams: { flights: FLIGHTS_STREAM },
    keys: TEST_KEYS,
    lake: { flush: { max_bytes: "256KiB", max_age: "300ms" } },
    seeds: { airports: { path: AIRPORTS } },
    batch: { clock: "stream:flights", retries: 1 },
    views: {
      departures: {
        stream: "flights",
        grain: "minute",
        dimensions: ["origin"],
        measures: {
          flights: "count",
          avg_delay: "avg(delay)",
          p95_delay: "p95(delay)",
          destinations: "count_distinct(destination)",
        },
        allowed_lateness: "10m",
      },
    },
  };
}

async function call(
  url: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url + path, {
    method: init.method ?? "GET",
    headers: {
      ...(init.body === undefined ? {} : { "content-type": "application/json" }),
      ...init.headers,
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

async function send(url: string, events: Flight[]): Promise<void> {
  const res = await call(url, "/v1/streams/flights/events", {
    method: "POST",
    headers: { authorization: `Bearer ${KEYS.writer.secret}` },
    body: events,
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

async function query(url: string, sql: string): Promise<unknown[][]> {
  const res = await call(url, "/v1/query", { method: "POST", headers: READER, body: { sql } });
  assert.equal(res.status, 200, `${sql}: ${JSON.stringify(res.body)}`);
  return (res.body as { rows: unknown[][] }).rows;
}

/** What the two runs must agree on: raw, every model and the view (SQL and HTTP). */
const CHECKS: Record<string, string> = {
  raw: "SELECT flight_id, date, delay, distance, origin, destination FROM raw.flights ORDER BY flight_id",
  t1: "SELECT * EXCLUDE (received_at) FROM t1.flights ORDER BY day, flight_id",
  rejects: "SELECT count(*) FROM t1.flights_rejects",
  t2: "SELECT * FROM t2.flights_enriched ORDER BY day, flight_id",
  daily_airport: "SELECT * FROM mart.daily_airport ORDER BY ALL",
  daily_route: "SELECT * FROM mart.daily_route ORDER BY ALL",
  view_sql: "SELECT * FROM view.departures ORDER BY ALL",
};

/** Every check's rows from one serve URL, and the view over HTTP at hour grain. */
async function snapshot(url: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [name, sql] of Object.entries(CHECKS)) out[name] = await query(url, sql);
  const view = await call(
    url,
    `/v1/views/departures?from=${DAYS[0]}T00:00:00Z&to=${DAYS[2]}T23:59:59Z&grain=hour`,
    { headers: READER },
  );
  assert.equal(view.status, 200, JSON.stringify(view.body));
  out.view_http = view.body;
  return out;
}

/** The sum of a metric's series on a process's /metrics. */
async function metricSum(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  ms = 240_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("multi-process pipeline on NATS + PostgreSQL + S3", () => {
  let s3: TestS3;
  const prefix = uniqueName("mp-");
  const schema = uniqueName("trb_mp_");
  const projects: TempProject[] = [];
  const processes: RoleProcess[] = [];
  before(async () => {
    s3 = await startS3rver("lake");
  });
  after(async () => {
    for (const p of processes) await killed(p.child, "SIGTERM");
    await s3?.stop();
    for (const p of projects) p.cleanup();
    await dropSchemas(schema);
    await deleteNatsStreams(prefix);
  });

  it("2 collect, 2 land, 2 speed, 2 batch, 1 scheduler, 1 serve equal an embedded run", async () => {
    const events = await flightSlice();
    assert.ok(events.length > 5_000, `a slice of real flights (${events.length})`);
    const distributed = {
      ...pipelineConfig(),
      batch: { clock: "stream:flights", retries: 1, schedule: "*/2 * * * * *" },
      backends: {
        stream: { kind: "nats", servers: [NATS], prefix, partitions: 2 },
        lake: s3.lakeConfig("lake"),
        catalog: { kind: "postgres", url: PG_URL, schema },
        speed: { kind: "postgres", url: PG_URL, schema: `${schema}_speed` },
      },
    };
    // One project folder per process, as on separate machines: only the backends are shared.
    const start = (roles: string[]): Promise<RoleProcess> => {
      const project = createProject(distributed, demoFiles());
      projects.push(project);
      return runRoles(project.dir, roles).then((p) => {
        processes.push(p);
        return p;
      });
    };
    const layout = [
      ["collect"],
      ["collect"],
      ["land"],
      ["land"],
      ["speed"],
      ["speed"],
      ["batch"],
      ["batch"],
      ["scheduler"],
      ["serve"],
    ];
    const started = await Promise.all(layout.map((roles) => start(roles)));
    const collects = started.filter((p) => p.roles.includes("collect"));
    const serve = started.find((p) => p.roles.includes("serve"))!;
    const batchWorker = started.find((p) => p.roles.includes("batch"))!;

    // Ingest through both collect processes, alternating blocks of 500.
    for (let i = 0, n = 0; i < events.length; i += 500, n++)
      await send(collects[n % 2]!.url, events.slice(i, i + 500));
    const flushed = await call(serve.url, "/v1/flush", { method: "POST", headers: ADMIN });
    assert.equal(flushed.status, 200, JSON.stringify(flushed.body));

    // The scheduler builds every day before the newest (DAYS[0], DAYS[1]) through the workers.
    let seen: unknown;
    try {
      await until("the scheduler's runs built both days of every model", async () => {
        const res = await call(batchWorker.url, "/v1/batch/partitions", { headers: READER });
        const { partitions } = res.body as { partitions: { day: string; status: string }[] };
        seen = partitions;
        const built = partitions.filter((p) => DAYS.slice(0, 2).includes(p.day));
        return built.length > 0 &&
          built.every((p) => p.status === "fresh") &&
          partitions.filter((p) => p.day === "*").every((p) => p.status === "fresh")
          ? true
          : undefined;
      });
    } catch (e) {
      const runs = await call(batchWorker.url, "/v1/batch/runs", { headers: READER });
      const logs = processes.map((p) => `--- ${p.roles.join(" ")}\n${p.output().slice(-3000)}`);
      throw new Error(
        `${(e as Error).message}\npartitions: ${JSON.stringify(seen)}\nruns: ${JSON.stringify(runs.body)}\n${logs.join("\n")}`,
        { cause: e },
      );
    }
    const runs = (await call(batchWorker.url, "/v1/batch/runs", { headers: READER })).body as {
      runs: { status: string }[];
    };
    assert.ok(
      runs.runs.length > 0 && runs.runs.every((r) => r.status !== "failed"),
      JSON.stringify(runs),
    );
    assert.deepEqual(
      await query(serve.url, "SELECT count(*), count(DISTINCT flight_id) FROM raw.flights"),
      [[events.length, events.length]],
      "every event is in raw once",
    );
    // Every process of a role did a share of the work.
    const shares: Record<string, number[]> = {};
    for (const [role, metric] of [
      ["collect", "tributary_collect_events_emitted_total"],
      ["land", "tributary_land_events_emitted_total"],
      ["speed", "tributary_speed_events_received_total"],
      ["batch", "tributary_batch_rows_emitted_total"],
    ] as const)
      shares[role] = await Promise.all(
        started.filter((p) => p.roles.includes(role)).map((p) => metricSum(p.url, metric)),
      );
    for (const [role, counts] of Object.entries(shares))
      assert.ok(
        counts.length === 2 && counts.every((n) => n > 0),
        `both ${role} processes worked: ${JSON.stringify(shares)}`,
      );
    assert.equal(
      shares.collect!.reduce((a, b) => a + b),
      events.length,
    );
    const got = await snapshot(serve.url);

    // The same events, embedded: one process, SQLite, the lake a folder.
    const embedded = await startTestNode(pipelineConfig(), demoFiles());
    try {
      for (let i = 0; i < events.length; i += 500) {
        const res = await embedded.send("flights", events.slice(i, i + 500));
        assert.equal(res.status, 200);
      }
      await embedded.flush();
      const run = await embedded.post(
        "/v1/batch/runs",
        { mode: "backfill", from: DAYS[0], to: DAYS[1], wait: true },
        ADMIN,
      );
      assert.equal(run.status, 200, run.text);
      const want = await snapshot(embedded.url);
      for (const name of Object.keys(want))
        assert.deepEqual(got[name], want[name], `${name} of the distributed run`);
      assert.equal((want.raw as unknown[]).length, events.length, "every event is in raw once");
    } finally {
      await embedded.close();
    }
  });
});
