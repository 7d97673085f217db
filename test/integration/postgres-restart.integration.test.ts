// PostgreSQL restarts during a batch run on the PostgreSQL catalog: the run completes. The batch
// engine retries tasks whose catalog calls failed; the pool replaces dropped connections.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { describe, it } from "node:test";
import pg from "pg";
import { pino } from "pino";
import { loadPipeline } from "../../src/config/index.js";
import { startNode } from "../../src/runtime/node.js";
import { FLIGHTS_STREAM, KEYS, createProject } from "../e2e/harness.js";
import { PG_URL, dropSchemas } from "./support.js";

/** Restarts the machine's PostgreSQL cluster (as .ci/run starts it) and waits until it answers. */
async function restartPostgres(): Promise<void> {
  const version = readdirSync("/etc/postgresql")[0]!;
  execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "restart"], {
    stdio: "ignore",
  });
  for (let i = 0; ; i++) {
    const client = new pg.Client({ connectionString: PG_URL });
    try {
      await client.connect();
      await client.query("SELECT 1");
      return;
    } catch (e) {
      if (i > 60) throw e;
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

describe("PostgreSQL restart", () => {
  it("during a batch run on the PostgreSQL catalog: the run completes and every day is fresh", async () => {
    const schema = `trb_restart_${randomBytes(3).toString("hex")}`;
    const project = createProject(
      {
        name: "pg-restart-it",
        streams: { flights: FLIGHTS_STREAM },
        keys: [
          { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] },
          { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
        ],
        batch: { retries: 6, retry_backoff: "1s", concurrency: 1 },
        backends: { catalog: { kind: "postgres", url: PG_URL, schema } },
      },
      {
        "models/t1/flights.sql":
          "SELECT event_day(date) AS day, flight_id, origin, delay FROM raw.flights WHERE delay IS NOT NULL",
        "models/mart/daily.sql":
          "SELECT day, origin, count(*) AS flights, avg(delay) AS avg_delay FROM t1.flights GROUP BY ALL",
      },
    );
    const node = await startNode(loadPipeline(project.dir), {
      port: 0,
      host: "127.0.0.1",
      log: pino({ level: "silent" }),
    });
    const admin = {
      authorization: `Bearer ${KEYS.admin.secret}`,
      "content-type": "application/json",
    };
    try {
      const flights = Array.from({ length: 3000 }, (_, i) => ({
        flight_id: `P${i}`,
        date: new Date(Date.UTC(2001, 0, 1 + (i % 20), i % 24)).toISOString().slice(0, 19) + "Z",
        delay: i % 90,
        distance: 250,
        origin: ["SFO", "LAX"][i % 2]!,
        destination: "JFK",
      }));
      const sent = await fetch(`${node.url}/v1/streams/flights/events`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${KEYS.writer.secret}`,
          "content-type": "application/json",
        },
        body: JSON.stringify(flights),
      });
      assert.equal(sent.status, 200);
      await node.flush();
      const started = await fetch(`${node.url}/v1/batch/runs`, {
        method: "POST",
        headers: admin,
        body: JSON.stringify({
          mode: "backfill",
          from: "2001-01-01",
          to: "2001-01-20",
          force: true,
        }),
      });
      const body = (await started.json()) as { run: { id: number } };
      assert.ok([200, 202].includes(started.status), JSON.stringify(body));
      await restartPostgres();
      // The run finishes (polled; the batch engine retries what the restart interrupted).
      let run: { status: string } | undefined;
      let tasks: { attempts: number; error: string | null }[] = [];
      for (let i = 0; i < 240; i++) {
        const res = await fetch(`${node.url}/v1/batch/runs/${body.run.id}`, { headers: admin });
        if (res.status === 200) {
          const json = (await res.json()) as { run: { status: string }; tasks: typeof tasks };
          run = json.run;
          tasks = json.tasks;
          if (run.status !== "running") break;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(run?.status, "succeeded", JSON.stringify(run));
      const retried = tasks.filter((t) => t.attempts > 1).length;
      process.stderr.write(`  ${tasks.length} tasks, ${retried} retried after the restart\n`);
      const parts = await fetch(`${node.url}/v1/batch/partitions?status=fresh`, { headers: admin });
      const fresh = (await parts.json()) as { partitions: { model: string }[] };
      assert.equal(fresh.partitions.filter((p) => p.model === "mart.daily").length, 20);
    } finally {
      await node.stop().catch(() => undefined);
      project.cleanup();
      await dropSchemas(schema);
    }
  });
});
