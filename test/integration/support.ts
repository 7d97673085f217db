// What the integration tests share: the servers' addresses, child processes of the CLI, cleanup.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { KEYS } from "../e2e/harness.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const ENTRY = fileURLToPath(new URL("../e2e/cli-entry.ts", import.meta.url));
export const PG_URL =
  process.env.TRIBUTARY_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const NATS = "nats://127.0.0.1:4222";

/** The writer, reader and admin keys of the e2e harness, as config. */
export const TEST_KEYS = [
  { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] },
  { id: KEYS.reader.id, secret: KEYS.reader.secret, scopes: ["read:*"] },
  { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
];

/** A name unique to this test run: `<prefix><6 hex digits>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(3).toString("hex")}`;
}

/** A `tributary run` child process. */
export interface RoleProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly roles: readonly string[];
  /** What it printed so far (stderr, then stdout). */
  output(): string;
}

/** Starts `tributary run <roles> -d <dir> --port 0` from source; resolves with its URL once up. */
export function runRoles(
  dir: string,
  roles: string[],
  env: Record<string, string> = {},
): Promise<RoleProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", ENTRY, "run", ...roles, "-d", dir, "--port", "0"],
    {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: "warn", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding("utf8").on("data", (s: string) => {
      out += s;
      const m = /is up: (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]!, roles, output: () => err + out });
    });
    child.once("exit", (code) => reject(new Error(`${roles.join(" ")} exited ${code}: ${err}`)));
  });
}

/** Kills a child with SIGKILL (or not, if it has exited) and waits for its exit. */
export function killed(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

/** Drops every PostgreSQL schema whose name starts with `prefix` (a test's catalog, queue, speed store). */
export async function dropSchemas(prefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
      [prefix],
    );
    for (const { nspname } of rows)
      await client.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Deletes the JetStream streams (and KV buckets) whose names contain `prefix`. */
export async function deleteNatsStreams(prefix: string, servers: string[] = [NATS]): Promise<void> {
  const { connect } = await import("@nats-io/transport-node");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const nc = await connect({ servers });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const si of jsm.streams.list())
      if (si.config.name.includes(prefix)) await jsm.streams.delete(si.config.name);
  } finally {
    await nc.close();
  }
}
