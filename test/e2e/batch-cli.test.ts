// `tributary batch plan|run` from the command line: the demo's plan, model errors with file, line and
// the nearest name, and the lock that keeps a second engine off a project a server runs.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createProject } from "./harness.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const ENTRY = join(HERE, "cli-entry.ts");

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", ENTRY, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, stdout, stderr })));
}

const CONFIG = {
  name: "cli-batch",
  streams: {
    events: {
      time_field: "ts",
      fields: { ts: "timestamp", user_id: "string", amount: "integer" },
    },
  },
};

describe("tributary batch (CLI)", () => {
  it("plan prints the demo's models in dependency order with their inputs", async () => {
    const r = await cli(["batch", "plan", "examples/flights", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as {
      models: { id: string; inputs: { table: string }[] }[];
      seeds: { name: string }[];
    };
    const ids = plan.models.map((m) => m.id);
    assert.deepEqual(
      new Set(ids),
      new Set([
        "t1.flights",
        "t1.flights_rejects",
        "t2.flights_enriched",
        "mart.daily_airport",
        "mart.daily_route",
        "view_state.departures",
      ]),
    );
    assert.ok(ids.indexOf("t1.flights") < ids.indexOf("t2.flights_enriched"));
    assert.ok(ids.indexOf("t2.flights_enriched") < ids.indexOf("mart.daily_airport"));
    const enriched = plan.models.find((m) => m.id === "t2.flights_enriched")!;
    assert.deepEqual(enriched.inputs.map((i) => i.table).sort(), ["seed.airports", "t1.flights"]);
    assert.deepEqual(
      plan.seeds.map((s) => s.name),
      ["seed.airports"],
    );
    const text = await cli(["batch", "plan", "examples/flights"]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /mart\.daily_airport/);
  });

  it("an unknown table names the model file, the line and the nearest table", async () => {
    const p = createProject(CONFIG, {
      "models/t1/users.sql":
        "SELECT\n  event_day(_event_time) AS day,\n  user_id\nFROM raw.event\n",
    });
    try {
      const r = await cli(["batch", "plan", p.dir]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /^TRB_BATCH_UNKNOWN_TABLE: .*users\.sql:4: .*raw\.event.*raw\.events/);
    } finally {
      p.cleanup();
    }
  });

  it("an unknown column and a cycle are errors naming the models", async () => {
    const p = createProject(CONFIG, {
      "models/t1/a.sql": "SELECT event_day(_event_time) AS day, amount FROM raw.events",
      "models/t2/b.sql": "SELECT day, amout FROM t1.a",
    });
    try {
      const r = await cli(["batch", "plan", p.dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^TRB_BATCH_UNKNOWN_COLUMN: .*b\.sql:1: t2\.b: .*amout/);
      writeFileSync(join(p.dir, "models", "t2", "b.sql"), "SELECT * FROM t2.c");
      writeFileSync(join(p.dir, "models", "t2", "c.sql"), "SELECT * FROM t2.b");
      const cycle = await cli(["batch", "plan", p.dir]);
      assert.equal(cycle.code, 1);
      assert.match(cycle.stderr, /^TRB_BATCH_CYCLE: .*t2\.(b|c) → t2\.(b|c) → t2\.(b|c)/);
    } finally {
      p.cleanup();
    }
  });

  it("a run refuses while another live process holds the project's batch lock", async () => {
    const p = createProject(CONFIG);
    // This test process stands in for a running server: it is alive and named in the lock.
    mkdirSync(join(p.dir, ".tributary"), { recursive: true });
    writeFileSync(
      join(p.dir, ".tributary", "batch.lock"),
      JSON.stringify({ pid: process.pid, what: "tributary up" }),
    );
    try {
      const r = await cli(["batch", "run", p.dir, "--date", "2001-01-01"]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^TRB_BATCH_BUSY: tributary up \(pid \d+\) runs this project's batch layer/,
      );
      const bad = await cli([
        "batch",
        "backfill",
        p.dir,
        "--from",
        "2001-02-30",
        "--to",
        "2001-03-01",
      ]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^TRB_BATCH_BAD_DATE: from `2001-02-30` is not a day/);
    } finally {
      p.cleanup();
    }
  });
});
