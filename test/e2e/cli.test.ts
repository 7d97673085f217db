// The `tributary` CLI end to end: init → up → send → flush/query/catalog, SIGTERM without loss, config errors.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { duckdb, request, sqlString } from "./harness.js";

const ENTRY = join(dirname(fileURLToPath(import.meta.url)), "cli-entry.ts");
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Output of a finished CLI run. */
interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts `tributary <args>` from source. */
function spawnCli(
  args: readonly string[],
): ChildProcess & { out: { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, ["--import", "tsx", ENTRY, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "warn", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { stdout: "", stderr: "" };
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out.stdout += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (out.stderr += s));
  return Object.assign(child, { out });
}

/** Waits for a child to exit, failing (and killing it) after `ms`. */
async function exited(child: ReturnType<typeof spawnCli>, ms: number): Promise<CliResult> {
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  try {
    const [code, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
    return { code, signal, ...child.out };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `tributary <args>` to completion. */
function cli(...args: string[]): Promise<CliResult> {
  return exited(spawnCli(args), 60_000);
}

/** Starts `up` and resolves with its URL once it prints it. */
async function up(project: string): Promise<{ child: ReturnType<typeof spawnCli>; url: string }> {
  const child = spawnCli(["up", project, "--port", "0", "--no-replay"]);
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      const m = /Tributary is up: (http:\/\/\S+)/.exec(child.out.stdout);
      if (m) {
        child.stdout!.off("data", onData);
        resolve(m[1]!);
      }
    };
    child.stdout!.on("data", onData);
    child.once("close", (code) =>
      reject(new Error(`up exited with ${code} before listening:\n${child.out.stderr}`)),
    );
  });
  return { child, url };
}

/** Non-empty lines of stderr. */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim().length > 0);
}

describe("tributary CLI", () => {
  let tmp: string;
  let project: string;
  let secrets: { write: string; read: string; admin: string };
  const running: ChildProcess[] = [];

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "trb-e2e-cli-"));
    project = join(tmp, "proj");
  });
  after(() => {
    for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    rmSync(tmp, { recursive: true, force: true });
  });

  it("init scaffolds a project and prints its secrets once", async () => {
    const res = await cli("init", project);
    assert.equal(res.code, 0, res.stderr);
    const secret = (name: string): string => {
      const m = new RegExp(`^\\s+${name}\\s+(\\S+)\\s*$`, "m").exec(res.stdout);
      assert.ok(m, `init prints the ${name} secret:\n${res.stdout}`);
      return m[1]!;
    };
    secrets = { write: secret("write"), read: secret("read"), admin: secret("admin") };
    assert.equal(new Set(Object.values(secrets)).size, 3, "three distinct secrets");
    const yaml = readFileSync(join(project, "tributary.yaml"), "utf8");
    for (const s of Object.values(secrets))
      assert.ok(!yaml.includes(s), "only hashes of secrets are stored");
    assert.ok(existsSync(join(project, ".gitignore")));
  });

  const acked = new Map<string, { event_id: string; user_id: string; value: number }>();
  let next = 0;
  /** One batch of init's `events` stream schema. */
  const batch = (
    n: number,
  ): { event_id: string; ts: string; user_id: string; name: string; value: number }[] =>
    Array.from({ length: n }, () => {
      const i = next++;
      return {
        event_id: `ev-${String(i).padStart(6, "0")}`,
        ts: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
        user_id: `u${i % 5}`,
        name: "signup",
        value: i / 4,
      };
    });

  /** The `up` process: started by the first test below, stopped by SIGTERM in the second. */
  let server: { child: ReturnType<typeof spawnCli>; url: string } | undefined;

  it("up accepts the project; flush, query and catalog show what was sent", async () => {
    assert.ok(secrets, "needs the init test");
    server = await up(project);
    const { child, url } = server;
    running.push(child);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    for (let r = 0; r < 3; r++) {
      const events = batch(10);
      const res = await request(`${url}/v1/streams/events/events`, events, {
        authorization: `Bearer ${secrets.write}`,
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.accepted, events.length);
      for (const e of events) acked.set(e.event_id, e);
    }
    const flush = await request(`${url}/v1/flush`, "", {
      authorization: `Bearer ${secrets.admin}`,
    });
    assert.equal(flush.status, 200, flush.text);

    // The CLI reads the catalog and lake directly, beside the running server.
    const [q, cat] = await Promise.all([
      cli(
        "query",
        "SELECT user_id, count(*) AS n, sum(value) AS total FROM raw.events GROUP BY user_id ORDER BY user_id",
        "-d",
        project,
      ),
      cli("catalog", project),
    ]);
    assert.equal(q.code, 0, q.stderr);
    const perUser = new Map<string, { n: number; total: number }>();
    for (const e of acked.values()) {
      const u = perUser.get(e.user_id) ?? { n: 0, total: 0 };
      perUser.set(e.user_id, { n: u.n + 1, total: u.total + e.value });
    }
    const lines = q.stdout.trim().split("\n");
    assert.match(lines[0]!, /^user_id\s+n\s+total$/);
    assert.deepEqual(
      lines.slice(2, -1).map((l) => l.split(/\s+/)),
      [...perUser.entries()].sort().map(([u, v]) => [u, String(v.n), String(v.total)]),
    );
    assert.equal(lines.at(-1), `(${perUser.size} rows)`);

    assert.equal(cat.code, 0, cat.stderr);
    const line = cat.stdout.split("\n").find((l) => l.startsWith("raw.events"));
    assert.ok(line, cat.stdout);
    const [, files, count] = line.split(/\s+/);
    assert.ok(Number(files) >= 1, line);
    assert.equal(Number(count), acked.size, line);
    assert.ok(
      cat.stdout.split("\n").some((l) => l.startsWith("dlq.events")),
      cat.stdout,
    );
  });

  it("SIGTERM while clients send: exits 0 and every acknowledged event is in the lake", async () => {
    assert.ok(server, "needs the running server of the test before");
    const before = acked.size;
    const { child, url } = server;
    let stop = false;
    let requestsAcked = 0;
    let alive = 0;
    const worker = async (): Promise<void> => {
      alive++;
      try {
        await send();
      } finally {
        alive--;
      }
    };
    const send = async (): Promise<void> => {
      while (!stop) {
        const events = batch(20);
        try {
          const res = await request(`${url}/v1/streams/events/events`, events, {
            authorization: `Bearer ${secrets.write}`,
          });
          if (res.status !== 200) {
            assert.equal(res.status, 503, `while stopping: ${res.status} ${res.text}`);
            return;
          }
          assert.equal(res.json.accepted, events.length, res.text);
          for (const e of events) acked.set(e.event_id, e);
          requestsAcked++;
        } catch {
          return; // the server closed: no ack, nothing promised
        }
      }
    };
    const workers = Array.from({ length: 4 }, () => worker());
    while (requestsAcked < 20 && alive > 0) await new Promise((r) => setTimeout(r, 10));
    if (alive === 0) await Promise.all(workers); // surfaces a client's failed assertion
    assert.ok(alive > 0, "the clients stopped before the SIGTERM");
    child.kill("SIGTERM");
    const res = await exited(child, 30_000);
    stop = true;
    await Promise.all(workers);
    assert.equal(res.signal, null, "up handles SIGTERM itself and exits within 30 s");
    assert.equal(res.code, 0, res.stderr);
    assert.ok(acked.size > before, "events were acknowledged before the SIGTERM");

    // No flush was asked for: stopping landed everything acknowledged.
    const q = await cli(
      "query",
      "--json",
      "SELECT event_id, user_id, value FROM raw.events",
      "-d",
      project,
    );
    assert.equal(q.code, 0, q.stderr);
    const stored = new Map(
      (JSON.parse(q.stdout) as { rows: [string, string, number][] }).rows.map((r) => [r[0], r]),
    );
    assert.equal(
      stored.size,
      (JSON.parse(q.stdout) as { rows: unknown[] }).rows.length,
      "no event stored twice",
    );
    for (const [id, e] of acked) {
      const row = stored.get(id);
      assert.ok(row, `acknowledged event ${id} is missing after SIGTERM`);
      assert.deepEqual(row, [id, e.user_id, e.value]);
    }
    // Unacknowledged requests may or may not have landed, but nothing that was never sent did.
    for (const id of stored.keys()) assert.ok(Number(id.slice(3)) < next, `unknown event ${id}`);
    const lake = join(project, "lake", "raw", "events", "**", "*.parquet");
    const [[count]] = (await duckdb(
      `SELECT count(*)::INTEGER FROM read_parquet(${sqlString(lake)}, hive_partitioning = true)`,
    )) as [[number]];
    assert.equal(count, stored.size);
  });

  it("a bad config file: exit code != 0 and one line naming file:line", async () => {
    const dir = join(tmp, "bad");
    mkdirSync(dir);
    const file = join(dir, "tributary.yaml");
    const lines = [
      "name: bad",
      "streams:",
      "  events:",
      "    fields:",
      "      user_id: string",
      "    time_feild: ts",
      "keys: []",
    ];
    writeFileSync(file, lines.join("\n") + "\n");
    const typoLine = lines.findIndex((l) => l.includes("time_feild")) + 1;
    const syntaxDir = join(tmp, "bad-syntax");
    mkdirSync(syntaxDir);
    const syntaxFile = join(syntaxDir, "tributary.yaml");
    writeFileSync(
      syntaxFile,
      ["name: bad", "streams:", "  events: {fields: {a: string}", "keys: []"].join("\n") + "\n",
    );
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    const valid = join(tmp, "valid");
    mkdirSync(valid);
    writeFileSync(
      join(valid, "tributary.yaml"),
      ["name: valid", "streams:", "  events: {fields: {a: string}}", "keys: []"].join("\n") + "\n",
    );

    const [typo, syntax, none, role, lonelyScheduler] = await Promise.all([
      cli("up", dir, "--port", "0"),
      cli("catalog", syntaxDir),
      cli("query", "SELECT 1", "-d", empty),
      cli("run", "colect", "-d", empty),
      cli("run", "scheduler", "-d", valid),
    ]);

    assert.notEqual(typo.code, 0, "up must fail");
    const errs = errorLines(typo.stderr);
    assert.equal(errs.length, 1, `one line, got:\n${typo.stderr}`);
    assert.ok(errs[0]!.includes(`${file}:${typoLine}`), `names ${file}:${typoLine}: ${errs[0]}`);
    assert.match(errs[0]!, /time_field/, "suggests the nearest key");

    // A YAML syntax error names its line too.
    assert.notEqual(syntax.code, 0);
    assert.equal(errorLines(syntax.stderr).length, 1, syntax.stderr);
    assert.match(
      syntax.stderr,
      new RegExp(`${syntaxFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+: `),
    );

    // No config at all.
    assert.notEqual(none.code, 0);
    assert.equal(errorLines(none.stderr).length, 1, none.stderr);
    assert.match(none.stderr, /TRB_CONFIG_NOT_FOUND/);

    // `run` with an unknown role, and a role that needs another in the same process.
    assert.notEqual(role.code, 0);
    assert.equal(errorLines(role.stderr).length, 1, role.stderr);
    assert.match(
      role.stderr,
      /unknown role colect; roles are collect, land, speed, batch, scheduler, serve/,
    );
    assert.notEqual(lonelyScheduler.code, 0);
    assert.equal(errorLines(lonelyScheduler.stderr).length, 1, lonelyScheduler.stderr);
    assert.match(lonelyScheduler.stderr, /run it together with the batch role/);
    assert.ok(!existsSync(join(valid, ".tributary")), "the refused process opened no backend");
  });
});
