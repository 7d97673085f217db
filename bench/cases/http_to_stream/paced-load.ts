// Open-loop load generator of http_to_stream: sends at a fixed rate and measures latency from each request's scheduled time.
//
// autocannon's rate limit is a per-second budget per connection: connections send back to back until
// the budget is spent, then idle until the next second, so its latencies at "80% of peak" are those of
// short bursts at full speed. This generator spreads requests evenly instead (one tick per
// millisecond) and, like wrk2, counts a request's latency from when it should have been sent, so a
// stalled server cannot hide its queue (no coordinated omission).
import { connect, type Socket } from "node:net";
import { STREAM, WRITE_KEY } from "../../flights.js";
import { bodyFactory, type Mode } from "./bodies.js";
import type { LatencyMs } from "./load.js";

/** What the driver asks for. */
export interface PacedArgs {
  readonly url: string;
  readonly mode: Mode;
  /** Requests per second. */
  readonly rate: number;
  readonly seconds: number;
  /** Keep-alive connections, each with at most one request in flight. */
  readonly connections: number;
}

/** What the paced generator reports. */
export interface PacedSummary {
  readonly targetRate: number;
  readonly achievedRate: number;
  readonly eventsPerSec: number;
  readonly sent: number;
  readonly completed: number;
  readonly statuses: Record<string, number>;
  /** From scheduled send time to the complete response. */
  readonly latencyMs: LatencyMs;
  /** From the actual write to the complete response (what the server alone adds). */
  readonly serviceMs: { p50: number; p99: number };
  readonly cpuSeconds: number;
}

interface Conn {
  readonly socket: Socket;
  busy: boolean;
  scheduled: number;
  written: number;
  buf: Buffer;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as PacedArgs;
  const url = new URL(args.url);
  const bodies = bodyFactory(args.mode);
  const head = Buffer.from(
    `POST /v1/streams/${STREAM}/events HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${WRITE_KEY.secret}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${bodies.length}\r\n\r\n`,
    "latin1",
  );
  const latencies: number[] = [];
  const service: number[] = [];
  const statuses: Record<string, number> = {};
  const queue: number[] = [];
  const idle: Conn[] = [];
  let sent = 0;
  let completed = 0;

  const send = (c: Conn, scheduled: number): void => {
    c.busy = true;
    c.scheduled = scheduled;
    c.written = performance.now();
    c.socket.write(Buffer.concat([head, bodies.next()]));
    sent++;
  };
  const onData = (c: Conn, chunk: Buffer): void => {
    c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
    const end = c.buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const headers = c.buf.subarray(0, end).toString("latin1");
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
    const total = end + 4 + Number(m?.[1] ?? 0);
    if (c.buf.length < total) return;
    const status = headers.slice(9, 12);
    c.buf = c.buf.subarray(total);
    const now = performance.now();
    latencies.push(now - c.scheduled);
    service.push(now - c.written);
    statuses[status] = (statuses[status] ?? 0) + 1;
    completed++;
    c.busy = false;
    const next = queue.shift();
    if (next !== undefined) send(c, next);
    else idle.push(c);
  };

  const conns = await Promise.all(
    Array.from(
      { length: args.connections },
      () =>
        new Promise<Conn>((resolve, reject) => {
          const socket = connect(Number(url.port), url.hostname);
          socket.setNoDelay(true);
          const c: Conn = { socket, busy: false, scheduled: 0, written: 0, buf: Buffer.alloc(0) };
          socket.once("connect", () => resolve(c));
          socket.once("error", reject);
          // A reset after connecting shows up as requests that never complete (counted as missing).
          socket.on("error", () => undefined);
          socket.on("data", (chunk: Buffer) => onData(c, chunk));
        }),
    ),
  );
  idle.push(...conns);

  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const stopAt = start + args.seconds * 1000;
  const interval = 1000 / args.rate;
  let issued = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = Math.min(performance.now(), stopAt);
      const due = Math.floor((now - start) / interval);
      for (; issued < due; issued++) {
        const scheduled = start + issued * interval;
        const c = idle.pop();
        if (c) send(c, scheduled);
        else queue.push(scheduled);
      }
      if (now >= stopAt) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  // Let what is in flight finish (bounded), then report.
  const drainUntil = performance.now() + 10_000;
  while ((queue.length > 0 || conns.some((c) => c.busy)) && performance.now() < drainUntil) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  for (const c of conns) c.socket.destroy();

  const ok = Object.entries(statuses).reduce((n, [s, v]) => (s.startsWith("2") ? n + v : n), 0);
  const summary: PacedSummary = {
    targetRate: args.rate,
    achievedRate: completed / elapsed,
    eventsPerSec: (ok * bodies.events) / elapsed,
    sent,
    completed,
    statuses,
    latencyMs: stats(latencies),
    serviceMs: {
      p50: pct(
        service.sort((a, b) => a - b),
        50,
      ),
      p99: pct(service, 99),
    },
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(JSON.stringify(summary) + "\n");
}

function stats(values: number[]): PacedSummary["latencyMs"] {
  values.sort((a, b) => a - b);
  const mean = values.reduce((s, v) => s + v, 0) / Math.max(1, values.length);
  return {
    mean,
    p50: pct(values, 50),
    p90: pct(values, 90),
    p99: pct(values, 99),
    p99_9: pct(values, 99.9),
    max: values[values.length - 1] ?? 0,
  };
}

/** The p-th percentile of sorted values (nearest rank). */
function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

await main();
