// End-to-end harness: declares a small pipeline inline in a temp folder, runs it in-process, cleans up.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { pino } from "pino";
import { stringify } from "yaml";
import { CONFIG_FILE, loadPipeline, type Pipeline } from "../../src/config/index.js";
import { startNode, type RunningNode } from "../../src/runtime/node.js";

/** Secrets of the keys every test project declares (ids double as AWS access key ids). */
export const KEYS = {
  writer: { id: "AKIDWRITER", secret: "writer-secret-0001" },
  segment: { id: "segment-writer", secret: "segment-write-key-0001" },
  reader: { id: "reader", secret: "reader-secret-0001" },
  admin: { id: "admin", secret: "admin-secret-0001" },
} as const;

/** The demo's `flights` stream (examples/flights/tributary.yaml): id, time and six typed fields. */
export const FLIGHTS_STREAM = {
  id_field: "flight_id",
  time_field: "date",
  fields: {
    flight_id: { type: "string", required: true },
    date: { type: "timestamp", required: true },
    delay: "integer",
    distance: "integer",
    origin: { type: "string", required: true },
    destination: { type: "string", required: true },
  },
} as const;

/** A config tree as written in tributary.yaml (plain data, turned into YAML). */
export type ConfigTree = Record<string, unknown>;

/**
 * The default test pipeline: a typed JSON stream `events` (with id and time fields) and a Segment
 * stream `web`, plus a writer, a Segment writer, a reader and an admin key.
 */
export function defaultConfig(): ConfigTree {
  return {
    name: "e2e",
    streams: {
      events: {
        id_field: "event_id",
        time_field: "ts",
        fields: {
          event_id: { type: "string", required: true },
          ts: "timestamp",
          user_id: { type: "string", required: true },
          amount: "integer",
          price: "number",
          ok: "boolean",
          tags: "json",
        },
      },
      web: { format: "segment" },
    },
    keys: [
      { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:events", "write:web"] },
      {
        id: KEYS.segment.id,
        secret: KEYS.segment.secret,
        scopes: ["write:web"],
        segment_stream: "web",
      },
      { id: KEYS.reader.id, secret: KEYS.reader.secret, scopes: ["read:*"] },
      { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
    ],
    // Tests flush explicitly; a long max_age keeps landing deterministic.
    lake: { flush: { max_bytes: "16MiB", max_age: "60s" } },
  };
}

/** Deep-merges `patch` into `base` (objects merge, everything else replaces). */
export function merge(base: ConfigTree, patch: ConfigTree): ConfigTree {
  const out: ConfigTree = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const b = out[k];
    const bothObjects = isPlainObject(b) && isPlainObject(v);
    out[k] = bothObjects ? merge(b, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is ConfigTree {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** A temp project folder holding a tributary.yaml. */
export interface TempProject {
  readonly dir: string;
  readonly configFile: string;
  cleanup(): void;
}

/**
 * Writes `config` (a tree, or YAML text as is) into a fresh temp folder, with `files` (relative
 * path → content, e.g. models and seeds) beside it.
 */
export function createProject(
  config: ConfigTree | string = defaultConfig(),
  files: Record<string, string> = {},
): TempProject {
  const dir = mkdtempSync(join(tmpdir(), "trb-e2e-"));
  const configFile = join(dir, CONFIG_FILE);
  writeFileSync(configFile, typeof config === "string" ? config : stringify(config));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return { dir, configFile, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A pipeline running in this process on a temp project. */
export interface TestNode {
  readonly dir: string;
  readonly pipeline: Pipeline;
  readonly node: RunningNode;
  readonly url: string;
  /** POST with a JSON (or raw string) body; returns status, headers and the parsed body. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<HttpResult>;
  /** Native ingest with the writer key. */
  send(stream: string, body: unknown, headers?: Record<string, string>): Promise<HttpResult>;
  /** POST /v1/flush with the admin key; throws unless 200. */
  flush(): Promise<void>;
  /** POST /v1/query with the given key (default: reader); throws unless 200. */
  query(sql: string, secret?: string): Promise<QueryBody>;
  /** Stops the node and deletes the folder. */
  close(): Promise<void>;
}

/** An HTTP response, read whole. */
export interface HttpResult {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary bodies
}

/** The body of a successful `POST /v1/query`. */
export interface QueryBody {
  readonly columns: { name: string; type: string }[];
  readonly rows: unknown[][];
  readonly snapshot: number;
}

/** Starts a pipeline from `config` (merged over nothing: pass `merge(defaultConfig(), …)` to extend). */
export async function startTestNode(
  config: ConfigTree | string = defaultConfig(),
  files: Record<string, string> = {},
): Promise<TestNode> {
  const project = createProject(config, files);
  let node: RunningNode;
  let pipeline: Pipeline;
  try {
    pipeline = loadPipeline(project.dir);
    node = await startNode(pipeline, {
      port: 0,
      host: "127.0.0.1",
      replay: false,
      log: pino({ level: "silent" }),
    });
  } catch (e) {
    project.cleanup();
    throw e;
  }
  const url = node.url;
  const post = (
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpResult> => request(`${url}${path}`, body, headers);
  return {
    dir: project.dir,
    pipeline,
    node,
    url,
    post,
    send: (stream, body, headers = {}) =>
      post(`/v1/streams/${stream}/events`, body, {
        authorization: `Bearer ${KEYS.writer.secret}`,
        ...headers,
      }),
    flush: async () => {
      const res = await post("/v1/flush", "", { authorization: `Bearer ${KEYS.admin.secret}` });
      if (res.status !== 200) throw new Error(`flush failed: ${res.status} ${res.text}`);
    },
    query: async (sql, secret = KEYS.reader.secret) => {
      const res = await post("/v1/query", { sql }, { authorization: `Bearer ${secret}` });
      if (res.status !== 200) throw new Error(`query failed: ${res.status} ${res.text}\n${sql}`);
      return res.json as QueryBody;
    },
    close: async () => {
      try {
        await node.stop();
      } finally {
        project.cleanup();
      }
    },
  };
}

/** POSTs `body` (a string as is, anything else as JSON) and reads the whole response. */
export async function request(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: text,
  });
  const out = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text: out, json };
}

/** One request for `postConcurrently`. */
export interface PlannedPost {
  readonly path: string;
  readonly body: string;
  readonly headers: Record<string, string>;
}

/** What `postConcurrently` saw of one request (status 0: the connection failed). */
export interface PostOutcome {
  readonly status: number;
  readonly retryAfter: string | null;
  readonly text: string;
}

/** The client of postConcurrently: plain ESM, so the child starts in milliseconds. */
const CONCURRENT_CLIENT = `
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { url, posts } = JSON.parse(input);
const out = await Promise.all(posts.map(async (p) => {
  try {
    const res = await fetch(url + p.path, { method: "POST", headers: p.headers, body: p.body });
    return { status: res.status, retryAfter: res.headers.get("retry-after"), text: await res.text() };
  } catch (e) {
    return { status: 0, retryAfter: null, text: String(e && e.cause ? e.cause.code ?? e.cause : e) };
  }
}));
process.stdout.write(JSON.stringify(out));
`;

/**
 * Sends all `posts` at once from a separate process. In-process clients share the server's event
 * loop, so they can never load it concurrently; a child process can, as real clients do.
 */
export async function postConcurrently(
  url: string,
  posts: readonly PlannedPost[],
): Promise<PostOutcome[]> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", CONCURRENT_CLIENT], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  child.stdin.end(JSON.stringify({ url, posts }));
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  const [code] = (await once(child, "close")) as [number | null];
  if (code !== 0) throw new Error(`concurrent client exited with ${code}`);
  return JSON.parse(stdout) as PostOutcome[];
}

/**
 * Runs SQL on a private DuckDB with no Tributary code involved: what Spark, Trino or a person with
 * the lake folder would see. Values come back as JSON.
 */
export async function duckdb(sql: string): Promise<unknown[][]> {
  const db = await DuckDBInstance.create(":memory:", {
    autoinstall_known_extensions: "false",
    autoload_known_extensions: "false",
  });
  try {
    const conn = await db.connect();
    try {
      const reader = await conn.runAndReadAll(sql);
      return reader.getRowsJson() as unknown[][];
    } finally {
      conn.closeSync();
    }
  } finally {
    db.closeSync();
  }
}

/** A SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** Rows of a query result as objects keyed by column name. */
export function records(result: QueryBody): Record<string, unknown>[] {
  return result.rows.map((row) =>
    Object.fromEntries(result.columns.map((c, i) => [c.name, row[i]])),
  );
}
