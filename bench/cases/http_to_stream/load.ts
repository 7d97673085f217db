// Load generator process of http_to_stream: runs autocannon against a server and prints one JSON summary line.
import autocannon from "autocannon";
import { WRITE_KEY, STREAM } from "../../flights.js";
import { bodyFactory, type Mode } from "./bodies.js";

/** What the driver asks for. */
export interface LoadArgs {
  readonly url: string;
  readonly mode: Mode;
  readonly seconds: number;
  readonly connections: number;
  readonly pipelining?: number;
  /** Requests per second over all connections (autocannon's per-second budget); unset = as fast as possible. */
  readonly overallRate?: number;
  /** Record every status and whether 429/503 answers carry Retry-After (costs load-generator CPU). */
  readonly trackResponses?: boolean;
}

/** Latency distribution of a load run, in milliseconds. */
export interface LatencyMs {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p99_9: number;
  max: number;
}

/** What the load generator reports. */
export interface LoadSummary {
  readonly seconds: number;
  readonly requests: number;
  readonly ok: number;
  readonly okPerSec: number;
  readonly eventsPerSec: number;
  readonly latencyMs: LatencyMs;
  readonly statuses: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
  /** 429/503 answers with and without a Retry-After header (only with trackResponses). */
  readonly rejected: {
    withRetryAfter: number;
    withoutRetryAfter: number;
    retryAfterValues: Record<string, number>;
  };
  /** CPU seconds this load generator used: near `seconds` means it, not the server, was the limit. */
  readonly cpuSeconds: number;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as LoadArgs;
  const bodies = bodyFactory(args.mode);
  const rejected = {
    withRetryAfter: 0,
    withoutRetryAfter: 0,
    retryAfterValues: {} as Record<string, number>,
  };
  const cpu0 = process.cpuUsage();
  const result = await autocannon({
    url: args.url,
    connections: args.connections,
    pipelining: args.pipelining ?? 1,
    duration: args.seconds,
    timeout: 30,
    ...(args.overallRate !== undefined
      ? { overallRate: Math.max(1, Math.round(args.overallRate)) }
      : {}),
    requests: [
      {
        method: "POST",
        path: `/v1/streams/${STREAM}/events`,
        headers: {
          authorization: `Bearer ${WRITE_KEY.secret}`,
          "content-type": "application/json",
        },
        setupRequest: (req) => {
          req.body = bodies.next();
          return req;
        },
        ...(args.trackResponses
          ? {
              onResponse: (
                status: number,
                _body: string,
                _ctx: unknown,
                headers: Record<string, string>,
              ) => {
                if (status !== 429 && status !== 503) return;
                const ra = headers["retry-after"];
                if (ra === undefined) rejected.withoutRetryAfter++;
                else {
                  rejected.withRetryAfter++;
                  rejected.retryAfterValues[ra] = (rejected.retryAfterValues[ra] ?? 0) + 1;
                }
              },
            }
          : {}),
      },
    ],
  });
  const cpu = process.cpuUsage(cpu0);
  const statuses: Record<string, number> = {};
  for (const [code, s] of Object.entries(result.statusCodeStats)) statuses[code] = s.count;
  const ok = result["2xx"];
  const seconds = result.duration;
  const summary: LoadSummary = {
    seconds,
    requests: result.requests.total,
    ok,
    okPerSec: ok / seconds,
    eventsPerSec: (ok * bodies.events) / seconds,
    latencyMs: {
      mean: result.latency.mean,
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      p99_9: result.latency.p99_9,
      max: result.latency.max,
    },
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    rejected,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(JSON.stringify(summary) + "\n");
}

await main();
