// Faults on the distributed backends: a land or speed process killed with SIGKILL mid-stream
// (repeatedly) loses nothing and counts nothing twice. Processes: `tributary run collect` and `tributary run
// land` as children on NATS JetStream + PostgreSQL, the lake a shared folder; a serve node in
// this process checks the result.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import pg from "pg";
import { pino } from "pino";
import { loadPipeline } from "../../src/config/index.js";
import { startNode } from "../../src/runtime/node.js";
import { FLIGHTS_STREAM, KEYS, createProject } from "../e2e/harness.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const ENTRY = fileURLToPath(new URL("../e2e/cli-entry.ts", import.meta.url));
const PG_URL = process.env.TRIBUTARY_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const NATS = "nats://127.0.0.1:4222";

/** Starts `tributary run <roles> -d <dir> --port 0` from source; resolves with its URL once up. */
function runRoles(
  dir: string,
  roles: string[],
): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", ENTRY, "run", ...roles, "-d", dir, "--port", "0"],
    { cwd: ROOT, env: { ...process.env, LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding("utf8").on("data", (s: string) => {
      out += s;
      const m = /is up: (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]!, stderr: () => err + out });
    });
    child.once("exit", (code) => reject(new Error(`${roles.join(" ")} exited ${code}: ${err}`)));
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

describe("faults on NATS + PostgreSQL", () => {
  it("SIGKILL of the land process mid-stream, three times: every event landed exactly once", async () => {
    const prefix = `fault-${randomBytes(3).toString("hex")}`;
    const schema = `trb_fault_${randomBytes(3).toString("hex")}`;
    const project = createProject({
      name: "faults-it",
      streams: { flights: FLIGHTS_STREAM },
      keys: [
        { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] },
        { id: KEYS.reader.id, secret: KEYS.reader.secret, scopes: ["read:*"] },
        { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
      ],
      // Small, frequent files: a kill lands between writes, uploads and commits.
      lake: { flush: { max_bytes: "32KiB", max_age: "100ms" } },
      backends: {
        stream: { kind: "nats", servers: [NATS], prefix },
        catalog: { kind: "postgres", url: PG_URL, schema },
      },
    });
    const children: ChildProcess[] = [];
    let serve: Awaited<ReturnType<typeof startNode>> | undefined;
    try {
      const collect = await runRoles(project.dir, ["collect"]);
      children.push(collect.child);
      let land = await runRoles(project.dir, ["land"]);
      children.push(land.child);
      let sent = 0;
      for (let round = 0; round < 4; round++) {
        // Send while land works; then kill it mid-stream and start a new one.
        for (let b = 0; b < 10; b++) {
          const events = Array.from({ length: 200 }, (_, i) => ({
            flight_id: `K${sent + i}`,
            date:
              new Date(Date.UTC(2001, 0, 1, 0, 0, (sent + i) % 86_400)).toISOString().slice(0, 19) +
              "Z",
            delay: i % 60,
            distance: 500,
            origin: "SFO",
            destination: "JFK",
          }));
          const res = await fetch(`${collect.url}/v1/streams/flights/events`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${KEYS.writer.secret}`,
              "content-type": "application/json",
            },
            body: JSON.stringify(events),
          });
          assert.equal(res.status, 200, await res.text());
          sent += events.length;
        }
        if (round < 3) {
          await killed(land.child);
          land = await runRoles(project.dir, ["land"]);
          children.push(land.child);
        }
      }
      // Flush through the collect process: it waits for the catalog to hold everything appended.
      const flushed = await fetch(`${collect.url}/v1/flush`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEYS.admin.secret}` },
      });
      assert.equal(flushed.status, 200, await flushed.text());
      serve = await startNode(loadPipeline(project.dir), {
        port: 0,
        host: "127.0.0.1",
        log: pino({ level: "silent" }),
        roles: ["serve"],
      });
      const res = await fetch(`${serve.url}/v1/query`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${KEYS.reader.secret}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({
          sql: "SELECT count(*) AS n, count(DISTINCT _event_id) AS ids FROM raw.flights",
        }),
      });
      const body = (await res.json()) as { rows: number[][] };
      assert.deepEqual(body.rows, [[sent, sent]], "every acknowledged event once");
    } finally {
      await serve?.stop();
      for (const c of children) await killed(c);
      project.cleanup();
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
      const { connect } = await import("@nats-io/transport-node");
      const { jetstreamManager } = await import("@nats-io/jetstream");
      const nc = await connect({ servers: NATS });
      const jsm = await jetstreamManager(nc);
      for await (const si of jsm.streams.list())
        if (si.config.name.includes(prefix)) await jsm.streams.delete(si.config.name);
      await nc.close();
    }
  });

  it("SIGKILL of the speed process mid-stream, three times: the view counts every event once", async () => {
    const prefix = `fault-${randomBytes(3).toString("hex")}`;
    const schema = `trb_fault_${randomBytes(3).toString("hex")}`;
    const project = createProject({
      name: "faults-speed-it",
      streams: { flights: FLIGHTS_STREAM },
      keys: [
        { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] },
        { id: KEYS.reader.id, secret: KEYS.reader.secret, scopes: ["read:*"] },
        { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
      ],
      views: {
        departures: {
          stream: "flights",
          dimensions: ["origin"],
          measures: { flights: "count", destinations: "count_distinct(destination)" },
        },
      },
      backends: {
        stream: { kind: "nats", servers: [NATS], prefix },
        catalog: { kind: "postgres", url: PG_URL, schema },
        // Speed checkpoints in the PostgreSQL speed store (compare-and-set per shard).
        speed: { kind: "postgres", url: PG_URL, schema },
      },
    });
    const children: ChildProcess[] = [];
    let serve: Awaited<ReturnType<typeof startNode>> | undefined;
    try {
      const collect = await runRoles(project.dir, ["collect"]);
      children.push(collect.child);
      let speed = await runRoles(project.dir, ["speed"]);
      children.push(speed.child);
      let sent = 0;
      for (let round = 0; round < 4; round++) {
        for (let b = 0; b < 10; b++) {
          const events = Array.from({ length: 200 }, (_, i) => ({
            flight_id: `S${sent + i}`,
            date:
              // One second apart, in order: nothing arrives behind the speed layer's watermark.
              new Date(Date.UTC(2001, 0, 1, 0, 0, sent + i)).toISOString().slice(0, 19) + "Z",
            delay: i % 60,
            distance: 500,
            origin: ["SFO", "LAX"][(sent + i) % 2]!,
            destination: `D${(sent + i) % 7}`,
          }));
          const res = await fetch(`${collect.url}/v1/streams/flights/events`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${KEYS.writer.secret}`,
              "content-type": "application/json",
            },
            body: JSON.stringify(events),
          });
          assert.equal(res.status, 200, await res.text());
          sent += events.length;
        }
        if (round < 3) {
          await killed(speed.child);
          speed = await runRoles(project.dir, ["speed"]);
          children.push(speed.child);
        }
      }
      serve = await startNode(loadPipeline(project.dir), {
        port: 0,
        host: "127.0.0.1",
        log: pino({ level: "silent" }),
        roles: ["serve"],
      });
      // The speed process checkpoints at least every second: poll the view until it has caught up.
      let total = -1;
      let rows: unknown[][] = [];
      for (let i = 0; i < 120 && total !== sent; i++) {
        const res = await fetch(
          `${serve.url}/v1/views/departures?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z&grain=day`,
          { headers: { authorization: `Bearer ${KEYS.reader.secret}` } },
        );
        rows = ((await res.json()) as { rows: unknown[][] }).rows;
        total = rows.reduce((s, r) => s + Number(r[2]), 0);
        if (total !== sent) await new Promise((r) => setTimeout(r, 250));
      }
      if (total !== sent) {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        const r = await c.query(
          `SELECT view, position, late, max_time FROM ${schema}.speed_checkpoints`,
        );
        process.stderr.write(`CHECKPOINTS: ${JSON.stringify(r.rows)}\n`);
        await c.end();
      }
      assert.equal(total, sent, "every event counted once");
      assert.deepEqual(
        rows.map((r) => [r[1], r[2], r[3]]),
        [
          ["LAX", sent / 2, 7],
          ["SFO", sent / 2, 7],
        ],
      );
    } finally {
      await serve?.stop();
      for (const c of children) await killed(c);
      project.cleanup();
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
      const { connect } = await import("@nats-io/transport-node");
      const { jetstreamManager } = await import("@nats-io/jetstream");
      const nc = await connect({ servers: NATS });
      const jsm = await jetstreamManager(nc);
      for await (const si of jsm.streams.list())
        if (si.config.name.includes(prefix)) await jsm.streams.delete(si.config.name);
      await nc.close();
    }
  });
});
