// SIGKILL in the middle of a batch backfill: every partition stays visible (old or new, never half),
// the stale lock is taken over, and the next backfill resumes and completes the run's work.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { pino } from "pino";
import { loadPipeline } from "../../src/config/index.js";
import { startNode } from "../../src/runtime/node.js";
import { FLIGHTS_STREAM, KEYS, request, startTestNode } from "./harness.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const ENTRY = join(HERE, "cli-entry.ts");
const DEMO_MODELS = join(ROOT, "examples", "flights", "models");
const AIRPORTS = ["ATL", "ORD", "DFW", "LAX"];
const DAYS = 8;

function projectFiles(): Record<string, string> {
  const files: Record<string, string> = {
    "seeds/airports.csv": "iata,city,state\n" + AIRPORTS.map((a) => `${a},C${a},S`).join("\n"),
  };
  for (const layer of readdirSync(DEMO_MODELS))
    for (const f of readdirSync(join(DEMO_MODELS, layer)))
      files[`models/${layer}/${f}`] = readFileSync(join(DEMO_MODELS, layer, f), "utf8");
  return files;
}

const CONFIG = {
  name: "batch-crash",
  streams: {
    flights: FLIGHTS_STREAM,
  },
  keys: [
    { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] },
    { id: KEYS.reader.id, secret: KEYS.reader.secret, scopes: ["read:*"] },
    { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
  ],
  lake: { flush: { max_bytes: "16MiB", max_age: "60s" } },
  seeds: { airports: { path: "seeds/airports.csv" } },
  // One task at a time, so the kill lands between commits of one run.
  batch: { concurrency: 1, retries: 0 },
};

/** Runs `tributary <args>` from source; resolves with the exit code and output. */
function cli(
  args: string[],
  onSpawn?: (pid: number) => void,
): Promise<{ code: number | null; signal: string | null; out: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", ENTRY, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onSpawn?.(child.pid!);
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (out += s));
  return new Promise((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, out })),
  );
}

/** Rows per model and day as the catalog's live partitions say, plus live file count per model. */
function catalogState(dataDir: string): {
  rows: Map<string, number>;
  tasksOfLatestRun: number;
  latestRunStatus: string | undefined;
} {
  const db = new Database(join(dataDir, "catalog.db"), { readonly: true, fileMustExist: true });
  try {
    const rows = new Map<string, number>();
    for (const r of db
      .prepare(
        `SELECT d.layer || '.' || d.name AS model, json_extract(f.partition_values, '$.day') AS day,
                sum(f.row_count) AS n
         FROM files f JOIN datasets d ON d.id = f.dataset_id
         WHERE f.removed_in IS NULL AND d.layer IN ('t1', 't2', 'mart') GROUP BY 1, 2`,
      )
      .all() as { model: string; day: string; n: number }[])
      rows.set(`${r.model}@${r.day}`, r.n);
    const run = db.prepare("SELECT id, status FROM batch_runs ORDER BY id DESC LIMIT 1").get() as
      { id: number; status: string } | undefined;
    const tasks = run
      ? (
          db.prepare("SELECT count(*) AS n FROM batch_tasks WHERE run_id = ?").get(run.id) as {
            n: number;
          }
        ).n
      : 0;
    return { rows, tasksOfLatestRun: tasks, latestRunStatus: run?.status };
  } finally {
    db.close();
  }
}

describe("batch crash", () => {
  it("a SIGKILL mid-backfill leaves every partition visible and the next backfill completes", async () => {
    // Land DAYS days of flights, then stop the server: the CLI runs the batch layer itself.
    const t = await startTestNode(CONFIG, projectFiles());
    const dir = t.dir;
    const dataDir = t.pipeline.dataDir;
    const flights = Array.from({ length: DAYS * 300 }, (_, i) => ({
      flight_id: `F${i}`,
      date:
        new Date(Date.UTC(2001, 0, 1 + (i % DAYS), i % 24, i % 60)).toISOString().slice(0, 19) +
        "Z",
      delay: (i * 13) % 90,
      distance: 100 + (i % 900),
      origin: AIRPORTS[i % AIRPORTS.length]!,
      destination: AIRPORTS[(i + 1) % AIRPORTS.length]!,
    }));
    for (let i = 0; i < flights.length; i += 500) {
      const res = await t.send("flights", flights.slice(i, i + 500));
      assert.equal(res.status, 200, res.text);
    }
    await t.flush();
    await t.node.stop();

    const to = `2001-01-0${DAYS}`;
    const first = await cli(["batch", "backfill", dir, "--from", "2001-01-01", "--to", to]);
    assert.equal(first.code, 0, first.out);
    const built = catalogState(dataDir).rows;
    const snapshotBefore = (
      new Database(join(dataDir, "catalog.db"), { readonly: true })
        .prepare("SELECT max(id) AS id FROM snapshots")
        .get() as { id: number }
    ).id;
    assert.equal(built.size, 4 * DAYS, "t1 ×2, t2, mart ×2 minus rejects without rows");

    // A changed model makes its partitions and everything downstream outdated: the next backfill
    // rebuilds them. Kill it after its first commits.
    const t1 = join(dir, "models", "t1", "flights.sql");
    writeFileSync(t1, readFileSync(t1, "utf8") + "\n-- reviewed\n");
    let pid = 0;
    let exited = false;
    const running = cli(
      ["batch", "backfill", dir, "--from", "2001-01-01", "--to", to],
      (p) => (pid = p),
    );
    void running.then(() => (exited = true));
    let killedAfter = -1;
    while (!exited && killedAfter < 0) {
      const s = catalogState(dataDir);
      if (s.latestRunStatus === "running" && s.tasksOfLatestRun >= 2) {
        process.kill(pid, "SIGKILL");
        killedAfter = s.tasksOfLatestRun;
      } else await new Promise((r) => setTimeout(r, 5));
    }
    const killed = await running;
    assert.ok(
      killedAfter >= 2,
      `the backfill was killed mid-run (it finished first: ${killed.out})`,
    );
    assert.equal(killed.signal, "SIGKILL");

    // Every partition is still there with the same rows: old or rebuilt, never missing or doubled.
    assert.deepEqual(catalogState(dataDir).rows, built);

    // The next backfill takes over the dead process's lock, marks its run interrupted, and builds
    // only what the killed run did not (resume), leaving every partition fresh.
    const resumed = await cli([
      "batch",
      "backfill",
      dir,
      "--from",
      "2001-01-01",
      "--to",
      to,
      "--json",
    ]);
    assert.equal(resumed.code, 0, resumed.out);
    const summary = JSON.parse(resumed.out) as { run: { status: string }; tasks: unknown[] };
    assert.equal(summary.run.status, "succeeded");
    assert.ok(
      summary.tasks.length > 0 && summary.tasks.length < 8,
      `resumed ${summary.tasks.length} of 8 tasks`,
    );
    assert.deepEqual(catalogState(dataDir).rows, built);
    const parts = await cli(["batch", "partitions", dir, "--json"]);
    const notFresh = (
      JSON.parse(parts.out) as { status: string; model: string; day: string }[]
    ).filter((p) => p.status !== "fresh" && p.model !== "t1.flights_rejects");
    assert.deepEqual(notFresh, []);
    const history = await cli(["batch", "runs", dir, "--json"]);
    const runs = JSON.parse(history.out) as { id: number; status: string }[];
    assert.ok(
      runs.some((r) => r.status === "interrupted"),
      history.out,
    );
    // No file of the killed run is left outside the catalog (replaced files stay registered, as
    // removed, for time travel; an orphan is a file no commit registered).
    const db = new Database(join(dataDir, "catalog.db"), { readonly: true });
    const known = new Set(
      (db.prepare("SELECT path FROM files").all() as { path: string }[]).map((r) => r.path),
    );
    db.close();
    const onDisk: string[] = [];
    const walk = (d: string, prefix: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name), `${prefix}${e.name}/`);
        else onDisk.push(`${prefix}${e.name}`);
      }
    };
    for (const layer of ["t1", "t2", "mart"]) walk(join(t.pipeline.lakeDir, layer), `${layer}/`);
    assert.deepEqual(
      onDisk.filter((p) => !known.has(p)),
      [],
      "orphans removed",
    );

    // A server started on the project afterwards sweeps orphans without touching replaced files:
    // time travel to the snapshot before the rebuild still reads every table.
    const node = await startNode(loadPipeline(dir), {
      port: 0,
      host: "127.0.0.1",
      replay: false,
      log: pino({ level: "silent" }),
    });
    try {
      const auth = { authorization: `Bearer ${KEYS.reader.secret}` };
      const parts = await fetch(`${node.url}/v1/batch/partitions`, { headers: auth });
      assert.equal(parts.status, 200, "planning (and the orphan sweep) ran");
      const sql = "SELECT count(*) AS n, sum(flights) AS f FROM mart.daily_airport";
      const then = await request(`${node.url}/v1/query`, { sql, snapshot: snapshotBefore }, auth);
      assert.equal(then.status, 200, then.text);
      const now = await request(`${node.url}/v1/query`, { sql }, auth);
      assert.deepEqual(then.json.rows, now.json.rows, "same data, read from the replaced files");
    } finally {
      await node.stop();
    }
    await t.close();
  });
});
