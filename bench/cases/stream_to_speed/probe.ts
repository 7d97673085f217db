// Freshness probe of stream_to_speed: every `everyMs` it sends one event in a bucket of its own (its
// own origin, so that bucket's count goes 0 → 1), and from the 200 ack polls GET /v1/views/<view>
// for that minute and origin every `pollMs` until the answer counts it: ack → visible.
import { STREAM, WRITE_KEY } from "../../flights.js";
import { READ_KEY, VIEW } from "./project.js";

/** What the driver asks for. */
export interface ProbeArgs {
  readonly url: string;
  readonly seconds: number;
  readonly everyMs: number;
  readonly pollMs: number;
  /** Event time of every probe (epoch ms; inside the background load's minutes, so never late). */
  readonly timeMs: number;
  /** Probe origins are `<prefix><4 digits>`; a new prefix per run keeps buckets unique. */
  readonly prefix: string;
  /** Give up on a probe after this long (counted as not visible). */
  readonly timeoutMs: number;
}

/** What the probe reports (milliseconds). */
export interface ProbeSummary {
  readonly probes: number;
  readonly visible: number;
  readonly timedOut: number;
  readonly failedSends: number;
  /** Ack → first view answer counting the event. */
  readonly freshnessMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** Send → 200 of the probe's POST. */
  readonly ackMs: { p50: number; p99: number };
  /** Answer time of the view GETs the probe made. */
  readonly queryMs: { p50: number; p99: number; count: number };
  readonly raw: number[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as ProbeArgs;
  const minute = Math.floor(a.timeMs / 60_000) * 60_000;
  const date = new Date(a.timeMs).toISOString().slice(0, 19) + "Z";
  const range = `from=${new Date(minute).toISOString()}&to=${new Date(minute + 60_000).toISOString()}&grain=minute`;
  const fresh: number[] = [];
  const acks: number[] = [];
  const queries: number[] = [];
  let timedOut = 0;
  let failedSends = 0;

  const probe = async (k: number): Promise<void> => {
    const origin = `${a.prefix}${String(k).padStart(4, "0")}`;
    const sent = performance.now();
    const res = await fetch(`${a.url}/v1/streams/${STREAM}/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${WRITE_KEY.secret}`, "content-type": "application/json" },
      body: JSON.stringify([
        {
          flight_id: `probe-${origin}`,
          date,
          delay: 7,
          distance: 500,
          origin,
          destination: "SFO",
        },
      ]),
    }).catch(() => undefined);
    if (!res || res.status !== 200) {
      failedSends++;
      await res?.arrayBuffer();
      return;
    }
    await res.arrayBuffer();
    const acked = performance.now();
    acks.push(acked - sent);
    const url = `${a.url}/v1/views/${VIEW}?${range}&origin=${origin}`;
    for (;;) {
      const q0 = performance.now();
      const answer = await fetch(url, { headers: { authorization: `Bearer ${READ_KEY.secret}` } })
        .then((r) => r.json() as Promise<{ rows?: unknown[][] }>)
        .catch(() => undefined);
      const now = performance.now();
      queries.push(now - q0);
      // Columns: bucket, origin, flights, avg_delay, p95_delay, destinations, layer.
      if (answer?.rows?.some((r) => Number(r[2]) >= 1)) {
        fresh.push(now - acked);
        return;
      }
      if (now - acked > a.timeoutMs) {
        timedOut++;
        return;
      }
      await sleep(a.pollMs);
    }
  };

  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let k = 0; performance.now() - start < a.seconds * 1000; k++) {
    pending.push(probe(k));
    const next = start + (k + 1) * a.everyMs;
    await sleep(Math.max(0, next - performance.now()));
  }
  await Promise.all(pending);
  const sorted = [...fresh].sort((x, y) => x - y);
  const qs = [...queries].sort((x, y) => x - y);
  const as = [...acks].sort((x, y) => x - y);
  const summary: ProbeSummary = {
    probes: pending.length,
    visible: fresh.length,
    timedOut,
    failedSends,
    freshnessMs: {
      p50: pct(sorted, 50),
      p90: pct(sorted, 90),
      p99: pct(sorted, 99),
      max: sorted[sorted.length - 1] ?? 0,
      mean: sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length),
    },
    ackMs: { p50: pct(as, 50), p99: pct(as, 99) },
    queryMs: { p50: pct(qs, 50), p99: pct(qs, 99), count: qs.length },
    raw: fresh.map((v) => Math.round(v * 10) / 10),
  };
  process.stdout.write(JSON.stringify(summary) + "\n");
}

/** The p-th percentile of sorted values (nearest rank). */
function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

await main();
