// Crash test: ingest under load while the server is SIGKILLed again and again; every acknowledged
// event must end up in raw.flights exactly once, and crashes during landing leave no visible orphans.
// Restart-to-ready times and the ingest rate are printed, never asserted (tests do not assert on time).
// By default the server runs from source under tsx (~1 s of its start-up is tsx itself); set
// TRIBUTARY_E2E_CLI to a compiled entry (a .js file calling main(process.argv)) to time the product.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test, type TestContext } from "node:test";
import { stringify } from "yaml";
import { openEmbeddedCatalogReadonly } from "../../src/backends/registry.js";
import { LAND_CONSUMER } from "../../src/land/index.js";
import { FLIGHTS_STREAM } from "./harness.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const ENTRY = join(ROOT, "test/e2e/cli-entry.ts");
const COMMAND = process.env.TRIBUTARY_E2E_CLI
  ? [resolve(process.env.TRIBUTARY_E2E_CLI)]
  : ["--import", "tsx", ENTRY];

const WRITE = "crash-write-key-0001";
const READ = "crash-read-key-0001";
const ADMIN = "crash-admin-key-0001";

/** Every restart must become ready within this (a hang, not a speed limit: times are reported, not asserted). */
const READY_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// The project and the server process

function projectConfig(flush: { max_bytes: string; max_age: string }): Record<string, unknown> {
  return {
    name: "crash",
    server: { host: "127.0.0.1" },
    streams: {
      flights: FLIGHTS_STREAM,
    },
    keys: [
      { id: "w", secret: WRITE, scopes: ["write:flights"] },
      { id: "r", secret: READ, scopes: ["read:*"] },
      { id: "a", secret: ADMIN, scopes: ["admin"] },
    ],
    lake: { flush },
    serve: { max_rows: 1_000_000 },
  };
}

/** Every child process started by this file, killed in `after` whatever happened. */
const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

function makeProject(flush: { max_bytes: string; max_age: string }): string {
  const dir = mkdtempSync(join(tmpdir(), "trb-crash-"));
  tempDirs.push(dir);
  writeFileSync(join(dir, "tributary.yaml"), stringify(projectConfig(flush)));
  return dir;
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = net.createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => done(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rand = (lo: number, hi: number): number => lo + Math.random() * (hi - lo);

/** `tributary up` in a child process, restarted on the same port and folder after every kill. */
class ServerProcess {
  readonly dir: string;
  readonly port: number;
  #child: ChildProcess | undefined;
  #output = "";
  /** ms from spawn to the first 200 of /readyz, per start. */
  readonly readyMs: number[] = [];

  constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The last few KB the server printed (for failure messages). */
  get output(): string {
    return this.#output.slice(-4000);
  }

  /** Spawns the server and waits for /readyz; returns the time to ready in ms. */
  async start(): Promise<number> {
    const { child, started } = this.#spawn();
    const deadline = started + READY_TIMEOUT_MS;
    while (performance.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `server exited (${child.exitCode ?? child.signalCode}) before ready:\n${this.output}`,
        );
      }
      if ((await getStatus(`${this.url}/readyz`)) === 200) {
        const ms = performance.now() - started;
        this.readyMs.push(ms);
        return ms;
      }
      await sleep(10);
    }
    throw new Error(`server not ready within ${READY_TIMEOUT_MS} ms:\n${this.output}`);
  }

  /** Spawns the server and SIGKILLs it `ms` later, ready or not (a crash during start-up). */
  async startAndKill(ms: number): Promise<void> {
    this.#spawn();
    await sleep(ms);
    await this.kill();
  }

  #spawn(): { child: ChildProcess; started: number } {
    assert.equal(this.#child, undefined, "server already running");
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: "warn" };
    delete env.NODE_TEST_CONTEXT;
    delete env.PORT;
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [...COMMAND, "up", this.dir, "--port", String(this.port), "--no-replay"],
      {
        cwd: ROOT,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    children.add(child);
    this.#child = child;
    const keep = (b: Buffer): void => {
      this.#output = (this.#output + b.toString("utf8")).slice(-20_000);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    return { child, started };
  }

  /** SIGKILLs the server and waits until the process is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    assert.ok(child, "no server to kill");
    this.#child = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await gone;
    }
    children.delete(child);
  }

  /** True while the current process has not exited on its own. */
  get alive(): boolean {
    return (
      this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
    );
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP without surprises: keep-alive sockets, every failure reported to the caller

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
after(() => agent.destroy());

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly retryAfter: number | undefined;
}

function post(url: string, body: string, secret: string, timeoutMs = 30_000): Promise<Reply> {
  return new Promise((done, fail) => {
    const req = http.request(
      url,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          authorization: `Bearer ${secret}`,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const ra = res.headers["retry-after"];
          done({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString("utf8"),
            retryAfter: ra === undefined ? undefined : Number(ra),
          });
        });
        res.on("error", fail);
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", fail);
    req.end(body);
  });
}

function getStatus(url: string): Promise<number> {
  return new Promise((done) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => done(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => done(0));
  });
}

async function query(server: ServerProcess, sql: string): Promise<unknown[][]> {
  const res = await post(`${server.url}/v1/query`, JSON.stringify({ sql }), READ, 120_000);
  assert.equal(res.status, 200, `query failed: ${res.status} ${res.body}\n${sql}`);
  return (JSON.parse(res.body) as { rows: unknown[][] }).rows;
}

async function flush(server: ServerProcess): Promise<void> {
  const res = await post(`${server.url}/v1/flush`, "", ADMIN, 120_000);
  assert.equal(res.status, 200, `flush failed: ${res.status} ${res.body}`);
}

// ---------------------------------------------------------------------------------------------
// The producer: at-least-once, like a real client. A batch is resent with the same ids until a 2xx.

const ORIGINS = ["LAX", "SFO", "JFK", "ORD", "ATL", "DEN", "SEA", "BOS"];

class Producer {
  readonly #url: string;
  readonly #loops: number;
  readonly #batchSize: number;
  #running = false;
  #aborted = false;
  #tasks: Promise<void>[] = [];
  #nextBatch = 0;
  /** Acknowledged batches: batch number → events in it. */
  readonly acked = new Map<number, number>();
  ackedEvents = 0;
  /** Events the server reported as duplicates of an earlier (unacknowledged) attempt. */
  duplicates = 0;
  /** Failed attempts: network errors (resets, refusals) and 5xx/429 answers. */
  networkErrors = 0;
  busyReplies = 0;
  /** Anything a correct server never answers (4xx, dead letters, wrong counts). */
  readonly anomalies: string[] = [];

  constructor(url: string, options: { loops: number; batchSize: number }) {
    this.#url = `${url}/v1/streams/flights/events`;
    this.#loops = options.loops;
    this.#batchSize = options.batchSize;
  }

  start(): void {
    this.#running = true;
    for (let i = 0; i < this.#loops; i++) this.#tasks.push(this.#loop());
  }

  /** Stops taking new batches; resolves once every started batch is acknowledged. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#tasks);
    this.#tasks = [];
  }

  /** Gives up on every batch not yet acknowledged (cleanup after a failure: no retry loops left behind). */
  abort(): void {
    this.#running = false;
    this.#aborted = true;
  }

  /** Sends one extra batch until acknowledged (used while no loop runs). */
  async sendOne(size: number): Promise<number> {
    const id = this.#nextBatch++;
    await this.#sendUntilAcked(id, this.#body(id, size), size);
    return id;
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      const id = this.#nextBatch++;
      await this.#sendUntilAcked(id, this.#body(id, this.#batchSize), this.#batchSize);
    }
  }

  #body(batch: number, size: number): string {
    const events = [];
    const base = Date.UTC(2001, 0, 1) + (batch % 48) * 1_800_000;
    for (let n = 0; n < size; n++) {
      events.push({
        flight_id: `${batch}-${n}`,
        date: new Date(base + n * 1000).toISOString(),
        delay: (batch * 7 + n) % 120,
        distance: 100 + ((batch + n) % 2000),
        origin: ORIGINS[(batch + n) % ORIGINS.length],
        destination: ORIGINS[(batch + 3 * n + 1) % ORIGINS.length],
      });
    }
    return JSON.stringify(events);
  }

  async #sendUntilAcked(batch: number, body: string, size: number): Promise<void> {
    while (!this.#aborted) {
      let res: Reply;
      try {
        res = await post(this.#url, body, WRITE);
      } catch {
        this.networkErrors++;
        await sleep(20);
        continue;
      }
      if (res.status === 503 || res.status === 429) {
        this.busyReplies++;
        await sleep(Math.min(100, (res.retryAfter ?? 0.05) * 1000));
        continue;
      }
      if (res.status !== 200) {
        this.anomalies.push(`batch ${batch}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
        return;
      }
      const r = JSON.parse(res.body) as {
        accepted: number;
        duplicates: number;
        dead_lettered: number;
      };
      if (r.dead_lettered !== 0 || r.accepted + r.duplicates !== size) {
        this.anomalies.push(`batch ${batch}: unexpected answer ${res.body.slice(0, 300)}`);
        return;
      }
      this.duplicates += r.duplicates;
      this.acked.set(batch, size);
      this.ackedEvents += size;
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checks

/** raw.flights holds exactly the acknowledged events, each once; dlq.flights is empty. */
async function verifyLake(server: ServerProcess, producer: Producer): Promise<void> {
  assert.deepEqual(
    producer.anomalies,
    [],
    "the server answered something a correct server never answers",
  );
  const dups = await query(
    server,
    "SELECT flight_id, count(*) AS c FROM raw.flights GROUP BY 1 HAVING count(*) > 1 ORDER BY c DESC, flight_id LIMIT 20",
  );
  assert.deepEqual(
    dups,
    [],
    `events landed more than once (flight_id, copies): ${JSON.stringify(dups)}`,
  );

  const [totals] = await query(
    server,
    "SELECT count(*), count(DISTINCT flight_id) FROM raw.flights",
  );
  assert.deepEqual(
    totals!.map(Number),
    [producer.ackedEvents, producer.ackedEvents],
    "rows, distinct ids vs acknowledged events",
  );

  // Per batch: exactly the ids `${batch}-0` .. `${batch}-${size-1}`, each once.
  const perBatch = await query(
    server,
    `SELECT CAST(split_part(flight_id, '-', 1) AS BIGINT) AS b, count(*) AS c, count(DISTINCT flight_id) AS d,
            min(CAST(split_part(flight_id, '-', 2) AS BIGINT)) AS lo, max(CAST(split_part(flight_id, '-', 2) AS BIGINT)) AS hi
     FROM raw.flights GROUP BY 1 ORDER BY 1`,
  );
  const found = new Map<number, number[]>(
    perBatch.map((r) => [Number(r[0]), r.slice(1).map(Number)]),
  );
  const missing: number[] = [];
  const wrong: string[] = [];
  for (const [batch, size] of producer.acked) {
    const f = found.get(batch);
    if (!f) missing.push(batch);
    else if (f[0] !== size || f[1] !== size || f[2] !== 0 || f[3] !== size - 1)
      wrong.push(`${batch}: ${JSON.stringify(f)}`);
    found.delete(batch);
  }
  assert.deepEqual(
    missing.slice(0, 20),
    [],
    `${missing.length} acknowledged batches are missing from raw.flights`,
  );
  assert.deepEqual(
    wrong.slice(0, 20),
    [],
    `${wrong.length} batches landed incompletely or with foreign ids`,
  );
  assert.deepEqual(
    [...found.keys()].slice(0, 20),
    [],
    "raw.flights holds batches that were never acknowledged",
  );

  const [dlq] = await query(server, "SELECT count(*) FROM dlq.flights");
  assert.equal(Number(dlq![0]), 0, "dlq.flights must be empty");
}

function summary(values: readonly number[]): { p50: number; max: number; min: number } {
  const s = [...values].sort((a, b) => a - b);
  return {
    p50: Math.round(s[Math.floor((s.length - 1) / 2)] ?? NaN),
    max: Math.round(s.at(-1) ?? NaN),
    min: Math.round(s[0] ?? NaN),
  };
}

/** Parquet files of raw.flights on disk that no live catalog entry names (read while the server is down). */
async function orphanFiles(dir: string): Promise<string[]> {
  const catalog = openEmbeddedCatalogReadonly(join(dir, ".tributary"));
  try {
    const live = await catalog.livePaths();
    return lakeFiles(dir).filter((k) => !live.has(k));
  } finally {
    await catalog.close();
  }
}

/** Stream position up to which raw.flights is committed in the catalog (read while the server is down). */
async function landedPosition(dir: string): Promise<number> {
  const catalog = openEmbeddedCatalogReadonly(join(dir, ".tributary"));
  try {
    return await catalog.position(LAND_CONSUMER, "flights", 0);
  } finally {
    await catalog.close();
  }
}

/** Keys (relative to the lake) of the Parquet files of raw.flights. */
function lakeFiles(dir: string): string[] {
  const base = join(dir, "lake", "raw", "flights");
  if (!existsSync(base)) return [];
  return (readdirSync(base, { recursive: true }) as string[])
    .filter((f) => f.endsWith(".parquet"))
    .map((f) => `raw/flights/${f.split("\\").join("/")}`);
}

function report(t: TestContext, lines: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(lines)) {
    t.diagnostic(`${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  }
}

// ---------------------------------------------------------------------------------------------

describe("crash safety (SIGKILL)", { concurrency: false }, () => {
  test(
    "every acknowledged event is in raw.flights exactly once after 20 SIGKILLs under load",
    { timeout: 400_000 },
    async (t) => {
      const KILLS = 20;
      // Short buffers, so files are committed between kills and every restart resumes mid-stream.
      const dir = makeProject({ max_bytes: "4MiB", max_age: "250ms" });
      const server = new ServerProcess(dir, await freePort());
      const coldStart = await server.start();
      const producer = new Producer(server.url, { loops: 8, batchSize: 200 });

      let upMs = 0;
      let upSince = performance.now();
      const wallStart = performance.now();
      producer.start();
      const restartMs: number[] = [];
      const killToReadyMs: number[] = [];
      let lastLanded = 0;
      /** Kills after which the catalog held more landed events than at the previous kill. */
      let restartsAfterLanding = 0;
      try {
        for (let i = 0; i < KILLS; i++) {
          await sleep(rand(500, 1200));
          assert.ok(server.alive, `server died on its own before kill ${i + 1}:\n${server.output}`);
          const killedAt = performance.now();
          upMs += killedAt - upSince;
          await server.kill();
          const landed = await landedPosition(dir);
          if (landed > lastLanded) restartsAfterLanding++;
          lastLanded = landed;
          restartMs.push(await server.start());
          killToReadyMs.push(performance.now() - killedAt);
          upSince = performance.now();
        }
        await sleep(1000);
        await producer.stop();
        upMs += performance.now() - upSince;
        const wallMs = performance.now() - wallStart;
        const flushStarted = performance.now();
        await flush(server);
        const flushMs = performance.now() - flushStarted;

        report(t, {
          kills: KILLS,
          "events acknowledged": producer.ackedEvents,
          "batches acknowledged": producer.acked.size,
          "ingest rate while up (events/s)": Math.round(producer.ackedEvents / (upMs / 1000)),
          "ingest rate over wall time incl. restarts (events/s)": Math.round(
            producer.ackedEvents / (wallMs / 1000),
          ),
          "cold start to ready (ms)": Math.round(coldStart),
          "restart (spawn) to ready ms": summary(restartMs),
          "kill to ready ms": summary(killToReadyMs),
          "restart to ready ms, in order": restartMs.map(Math.round),
          "final flush (ms)": Math.round(flushMs),
          "kills after new files were committed": restartsAfterLanding,
          "failed attempts (network)": producer.networkErrors,
          "503/429 replies": producer.busyReplies,
          "duplicates absorbed by dedup": producer.duplicates,
        });

        assert.ok(producer.ackedEvents > 0, "the producer got acknowledgements");
        assert.ok(
          restartsAfterLanding > 0,
          "landing committed files between kills (else restarts never resume mid-stream)",
        );
        assert.ok(
          producer.networkErrors > 0,
          "kills interrupted requests in flight (else the test proves nothing)",
        );
        await verifyLake(server, producer);
      } finally {
        producer.abort();
        if (server.alive) await server.kill();
      }
    },
  );

  test(
    "SIGKILL while landing: no loss, no duplicates, orphan Parquet files invisible and removed",
    { timeout: 300_000 },
    async (t) => {
      const KILLS = 8;
      // Tiny buffers: the lander writes and commits a file every few hundred events, all the time.
      const dir = makeProject({ max_bytes: "48KiB", max_age: "100ms" });
      const staging = join(dir, "lake", "_staging", "raw.flights");
      const server = new ServerProcess(dir, await freePort());
      await server.start();
      const producer = new Producer(server.url, { loops: 4, batchSize: 100 });
      producer.start();

      let killsMidLanding = 0;
      let killsDuringStartup = 0;
      let naturalOrphans = 0;
      const plantedOrphans: string[] = [];
      try {
        for (let i = 0; i < KILLS; i++) {
          await sleep(rand(150, 600));
          // Kill the moment a landing is under way (its staging folder holds NDJSON or Parquet being written).
          const deadline = performance.now() + 2000;
          let landing = false;
          while (performance.now() < deadline) {
            if (existsSync(staging) && readdirSync(staging).length > 0) {
              landing = true;
              break;
            }
            await sleep(1);
          }
          if (landing) killsMidLanding++;
          assert.ok(server.alive, `server died on its own before kill ${i + 1}:\n${server.output}`);
          await server.kill();

          const orphans = await orphanFiles(dir);
          naturalOrphans += orphans.length;
          // A crash right after a file was moved into the lake and before its commit: plant one such file.
          const live = lakeFiles(dir).filter((k) => !orphans.includes(k));
          if (i % 3 === 0 && live.length > 0) {
            const src = join(dir, "lake", live[0]!);
            const planted = join(dirname(src), `part-planted-orphan-${i}.parquet`);
            copyFileSync(src, planted);
            plantedOrphans.push(planted);
          }
          const expectedGone = [...orphans.map((k) => join(dir, "lake", k)), ...plantedOrphans];
          if (i % 3 === 1) {
            // Crash again while starting (dedup reload, orphan removal, catch-up landing), then start.
            await server.startAndKill(rand(500, 3000));
            killsDuringStartup++;
          }
          await server.start();
          const left = expectedGone.filter((f) => existsSync(f));
          assert.deepEqual(
            left,
            [],
            "orphan files must be removed at restart, before the server is ready",
          );
        }
        await producer.stop();
        await flush(server);
        await verifyLake(server, producer);

        // An unregistered file in a live partition is invisible to queries, even across a new snapshot.
        const [before] = await query(server, "SELECT count(*) FROM raw.flights");
        const live = lakeFiles(dir);
        assert.ok(live.length > 0, "the lake has files");
        const src = join(dir, "lake", live[0]!);
        const planted = join(dirname(src), "part-planted-while-running.parquet");
        copyFileSync(src, planted);
        await producer.sendOne(10);
        await flush(server);
        const [afterPlant] = await query(server, "SELECT count(*) FROM raw.flights");
        assert.equal(
          Number(afterPlant![0]),
          Number(before![0]) + 10,
          "only the committed batch became visible",
        );
        await verifyLake(server, producer);
        await server.kill();
        assert.ok(existsSync(planted), "the planted file is still there while the server is down");
        await server.start();
        assert.equal(existsSync(planted), false, "the planted orphan is removed at restart");
        await verifyLake(server, producer);

        report(t, {
          kills: KILLS,
          "kills while a landing was in progress": killsMidLanding,
          "extra kills during start-up": killsDuringStartup,
          "orphan files left by real crashes (then removed)": naturalOrphans,
          "planted orphans (removed)": plantedOrphans.length + 1,
          "events acknowledged": producer.ackedEvents,
          "files in raw.flights": lakeFiles(dir).length,
          "restart to ready ms": summary(server.readyMs),
          "duplicates absorbed by dedup": producer.duplicates,
        });
      } finally {
        producer.abort();
        if (server.alive) await server.kill();
      }
    },
  );
});
