// Case view_query: GET /v1/views/departures for one day at minute grain, all origins, answered from
// the batch layer's view_state partitions, beside the hand-written DuckDB query over the raw files.
//
// Setup (not timed): the day's flights of flights-3m are sent through HTTP to `tributary up`
// (pinned to CPU 1), landed (POST /v1/flush) and the day is built by the batch layer (POST
// /v1/batch/runs), so the whole day comes from view_state partitions. Then `QUERIES` sequential
// GETs from this process, then the baseline's as many runs of its query in a child pinned to the
// same CPU, reading the raw Parquet files the land stage wrote for that day.
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { quoteString } from "../../../src/lake/index.js";
import { STREAM, WRITE_KEY } from "../../flights.js";
import {
  ROOT,
  boundMetric,
  buildForBench,
  canPin,
  checkMetric,
  runChild,
  spawnChild,
  type BenchCase,
} from "../../harness.js";
import { FLIGHTS_3M } from "../lake_to_mart/raw-lake.js";
import { ADMIN_KEY, READ_KEY, VIEW } from "../stream_to_speed/project.js";
import type { ViewServerHello } from "../stream_to_speed/server.js";
import type { BaselineArgs, BaselineSummary } from "./baseline.js";

const HERE = join(ROOT, "bench", "cases", "view_query");
const PIN = process.env.BENCH_PIN !== "0" && canPin();
const SERVER_CPUS = PIN ? "1" : undefined;
/** The day queried (a Thursday of flights-3m). */
const DAY = "2001-03-01";
const QUERIES = 100;
const WARMUP = 5;
/** The serve engine's DuckDB threads (src/serve/query-engine.ts). */
const THREADS = 2;

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const out = await fn();
  process.stderr.write(`    ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return out;
}

/** The day's flights as events (ids numbered as the demo's replay numbers them, over the day). */
export async function dayFlights(day = DAY): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(":memory:", { threads: "2" });
  const conn = await db.connect();
  try {
    const reader = await conn.runAndReadAll(`
      SELECT printf('FL%07d', row_number() OVER (ORDER BY date, origin, destination, distance, delay)) AS flight_id,
             strftime(date, '%Y-%m-%dT%H:%M:%SZ') AS date, delay::INTEGER AS delay, distance::INTEGER AS distance, origin, destination
      FROM read_parquet(${quoteString(FLIGHTS_3M)})
      WHERE date >= TIMESTAMP '${day}' AND date < TIMESTAMP '${day}' + INTERVAL 1 DAY`);
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

async function call(
  url: string,
  method: "GET" | "POST",
  secret: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${secret}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : null };
}

function pct(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return 0;
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
}

interface Answer {
  batch_until: string | null;
  rows: unknown[][];
}

export const viewQuery: BenchCase = {
  name: "view_query",
  async run() {
    buildForBench();
    const flights = await timed(`read ${DAY} of flights-3m`, () => dayFlights());
    const server = await timed("start tributary", () =>
      spawnChild<ViewServerHello>(
        join(ROOT, "bench", "cases", "stream_to_speed", "server.ts"),
        {},
        { cpus: SERVER_CPUS },
      ),
    );
    const url = server.hello.url;
    try {
      await timed(`send ${flights.length} events`, async () => {
        for (let i = 0; i < flights.length; i += 1000) {
          const r = await call(
            `${url}/v1/streams/${STREAM}/events`,
            "POST",
            WRITE_KEY.secret,
            flights.slice(i, i + 1000),
          );
          if (r.status !== 200) throw new Error(`send: ${r.status} ${JSON.stringify(r.json)}`);
        }
      });
      await timed("flush", async () => {
        const r = await call(`${url}/v1/flush`, "POST", ADMIN_KEY.secret);
        if (r.status !== 200) throw new Error(`flush: ${r.status} ${JSON.stringify(r.json)}`);
      });
      await timed(`batch run ${DAY}`, async () => {
        const r = await call(`${url}/v1/batch/runs`, "POST", ADMIN_KEY.secret, {
          date: DAY,
          force: true,
          wait: true,
        });
        const status = (r.json as { run?: { status?: string } }).run?.status;
        if (r.status !== 200 || status !== "succeeded")
          throw new Error(`batch run: ${r.status} ${JSON.stringify(r.json).slice(0, 500)}`);
      });
      const to = new Date(Date.parse(`${DAY}T00:00:00Z`) + 86_400_000).toISOString();
      const query = `${url}/v1/views/${VIEW}?from=${DAY}T00:00:00Z&to=${to}&grain=minute`;
      const latencies: number[] = [];
      let coldMs = 0;
      let answer: Answer = { batch_until: null, rows: [] };
      await timed(`${WARMUP} + ${QUERIES} view queries`, async () => {
        for (let i = 0; i < WARMUP + QUERIES; i++) {
          const t0 = performance.now();
          const r = await call(query, "GET", READ_KEY.secret);
          const ms = performance.now() - t0;
          if (r.status !== 200) throw new Error(`view: ${r.status} ${JSON.stringify(r.json)}`);
          answer = r.json as Answer;
          if (i === 0) coldMs = ms;
          if (i >= WARMUP) latencies.push(ms);
        }
      });
      const base = await timed(`baseline: ${WARMUP} + ${QUERIES} DuckDB queries`, () =>
        runChild<BaselineSummary>(
          join(HERE, "baseline.ts"),
          {
            rawDir: join(server.hello.lakeDir, "raw"),
            day: DAY,
            times: QUERIES,
            warmup: WARMUP,
            threads: THREADS,
          } satisfies BaselineArgs,
          { cpus: SERVER_CPUS },
        ),
      );
      const layers = new Set(answer.rows.map((r) => String(r[r.length - 1])));
      const viewFlights = answer.rows.reduce((s, r) => s + Number(r[2]), 0);
      const notes: string[] = [];
      if (answer.rows.length !== base.rows || viewFlights !== base.flights)
        notes.push(
          `answers differ: the view gave ${answer.rows.length} rows / ${viewFlights} flights, the baseline ${base.rows} rows / ${base.flights} flights`,
        );
      if ([...layers].some((l) => l !== "batch"))
        notes.push(`layers in the answer: ${[...layers].join(", ")} (expected batch only)`);
      const tP99 = pct(latencies, 99);
      const bP99 = pct(base.latenciesMs, 99);
      const goal = 1.5 * bP99 + 2;
      return {
        measures: `GET /v1/views/departures?from=${DAY}&to=+1 day&grain=minute (all origins; ${answer.rows.length} rows) on \`tributary up\` pinned to one core, the day built by the batch layer (answered from its view_state partitions: pre-aggregated partial states, decoded once per file and cached by path — a committed file never changes — then filtered and finalized; batch_until ${answer.batch_until}), ${QUERIES} sequential requests after ${WARMUP} warm-up, timed by the client (HTTP and JSON included); setup: the day's ${flights.length} flights of flights-3m sent through HTTP, landed, built.`,
        baseline: `the equivalent hand-written DuckDB query (date_trunc minute, origin, count, avg, quantile_disc 0.95, count DISTINCT) over the day's raw Parquet files the land stage wrote (${base.files} files), ${THREADS} threads, pinned to the same core, run as many times in one instance, timed in-process (no HTTP). It scans raw rows; the view reads partial states.`,
        metrics: [
          boundMetric(
            "one day at minute grain, all origins: p50",
            "ms",
            pct(latencies, 50),
            undefined,
            pct(base.latenciesMs, 50),
          ),
          boundMetric("one day at minute grain, all origins: p99", "ms", tP99, undefined, bP99),
          boundMetric(
            "first query (decodes the day's view_state file; the baseline's first run)",
            "ms",
            coldMs,
            undefined,
            base.coldMs,
          ),
          checkMetric(
            "the same p99 against 1.5 × baseline p99 + 2 ms",
            "ms",
            tP99,
            `<= ${goal.toFixed(1)} ms (1.5x + 2 ms)`,
            tP99 <= goal,
          ),
        ],
        details: {
          day: DAY,
          events: flights.length,
          rows: answer.rows.length,
          viewFlights,
          layers: [...layers],
          tributaryMs: {
            p50: pct(latencies, 50),
            p90: pct(latencies, 90),
            p99: tP99,
            max: pct(latencies, 100),
          },
          baselineMs: {
            p50: pct(base.latenciesMs, 50),
            p90: pct(base.latenciesMs, 90),
            p99: bP99,
            max: pct(base.latenciesMs, 100),
          },
          baselineSql: base.sql,
        },
        notes,
      };
    } finally {
      await server.stop();
    }
  },
};
