// Implementations of the CLI commands; each prints for people by default and JSON with --json.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { openCatalog, openLake } from "../backends/registry.js";
import { hasCatalog } from "./batch.js";
import { describeCatalog } from "../catalog/index.js";
import { CONFIG_FILE, loadPipeline, sha256Hex } from "../config/index.js";
import { TributaryError } from "../errors.js";
import { checkRoles, startNode, type RunningNode } from "../runtime/node.js";
import { QueryEngine } from "../serve/index.js";

/** `tributary up`: runs the pipeline until SIGTERM/SIGINT, then lands what is buffered and exits. */
export async function runUp(
  project: string,
  opts: { port?: number; speed?: number; replay: boolean },
): Promise<void> {
  const pipeline = loadPipeline(project);
  const envPort = process.env.PORT === undefined ? undefined : Number(process.env.PORT);
  const node = await startNode(pipeline, {
    port: opts.port ?? envPort ?? pipeline.server.port,
    replay: opts.replay,
    ...(opts.speed !== undefined ? { speed: opts.speed } : {}),
  });
  const read =
    pipeline.keys.find((k) => k.scopes.some((s) => s.startsWith("read:")) && k.secret)?.secret ??
    "<read key>";
  const first = [...pipeline.streams.keys()][0] ?? "<stream>";
  process.stdout.write(
    [
      "",
      `Tributary is up: ${node.url}  (pipeline ${pipeline.name}, data in ${pipeline.dataDir})`,
      `Console: open ${node.url.replace("127.0.0.1", "localhost")}/ in a browser and sign in with a read or admin key${read === "<read key>" ? "" : ` (e.g. ${read})`}`,
      "Try:",
      `  curl -s ${node.url}/v1/catalog -H 'Authorization: Bearer ${read}'`,
      `  curl -s ${node.url}/v1/query -H 'Authorization: Bearer ${read}' -H 'Content-Type: application/json' \\`,
      `       -d '{"sql": "SELECT count(*) AS events, max(_event_time) AS latest FROM raw.${first}"}'`,
      `  npx tributary query "SELECT * FROM raw.${first} LIMIT 5" -d ${project}`,
      ...(pipeline.batch.schedule !== undefined
        ? [
            `  curl -s ${node.url}/v1/batch/partitions -H 'Authorization: Bearer ${read}'   # batch layer: fresh/stale days per model`,
            `  npx tributary batch runs ${project}`,
          ]
        : []),
      `  curl -s ${node.url}/metrics | grep tributary_`,
      "Stop with Ctrl-C: intake stops, buffered events land, then it exits.",
      "",
    ].join("\n"),
  );
  await untilSignal(node);
}

/**
 * `tributary run <role...>`: runs the given roles of a pipeline in this process until
 * SIGTERM/SIGINT (a process per role scales each stage separately; see docs/deploy.md).
 */
export async function runRoles(
  roles: readonly string[],
  opts: { dir: string; port?: number },
): Promise<void> {
  checkRoles(roles);
  const pipeline = loadPipeline(opts.dir);
  const envPort = process.env.PORT === undefined ? undefined : Number(process.env.PORT);
  const node = await startNode(pipeline, {
    roles,
    port: opts.port ?? envPort ?? pipeline.server.port,
  });
  process.stdout.write(
    `Tributary ${roles.join(", ")} is up: ${node.url}  (pipeline ${pipeline.name})\n`,
  );
  await untilSignal(node);
}

/** Waits for SIGTERM or SIGINT, then stops the node (landing what is buffered). */
async function untilSignal(node: RunningNode): Promise<void> {
  await new Promise<void>((done) => {
    const shutdown = (signal: string): void => {
      node.log.info({ signal }, "stopping: intake closed, landing buffered events");
      node.stop().then(
        () => {
          node.log.info("stopped cleanly");
          done();
        },
        (e: unknown) => {
          node.log.error({ err: e }, "stop failed");
          process.exitCode = 1;
          done();
        },
      );
    };
    process.once("SIGTERM", shutdown);
    process.once("SIGINT", shutdown);
  });
}

/** `tributary init`: writes a working project with one stream and fresh keys, printing the secrets once. */
export async function runInit(folder: string): Promise<void> {
  const dir = resolve(folder);
  const file = join(dir, CONFIG_FILE);
  if (existsSync(file))
    throw new TributaryError(
      "TRB_CONFIG_INVALID",
      `${file} exists already; init in an empty folder.`,
    );
  mkdirSync(dir, { recursive: true });
  const secret = (): string => `trb_${randomBytes(24).toString("base64url")}`;
  const [write, read, admin] = [secret(), secret(), secret()];
  writeFileSync(
    file,
    `# Tributary pipeline. Reference: docs/reference/config.md
name: my-pipeline
streams:
  events:
    description: Application events
    id_field: event_id
    time_field: ts
    fields:
      event_id: { type: string, required: true }
      ts: timestamp
      user_id: string
      name: string
      value: number
keys:
  # Secrets are stored as SHA-256 hashes; the secrets were printed once by \`tributary init\`.
  - id: writer
    secret_sha256: ${sha256Hex(write)}
    scopes: [write:events]
  - id: reader
    secret_sha256: ${sha256Hex(read)}
    scopes: ["read:*"]
  - id: admin
    secret_sha256: ${sha256Hex(admin)}
    scopes: [admin]
`,
  );
  writeFileSync(join(dir, ".gitignore"), ".tributary/\nlake/\n");
  process.stdout.write(
    [
      `Created ${file}. Keep these secrets; only their hashes are stored:`,
      `  write  ${write}`,
      `  read   ${read}`,
      `  admin  ${admin}`,
      `Run it:   npx tributary up ${folder}`,
      `Send:     curl -s localhost:8080/v1/streams/events/events -H 'Authorization: Bearer ${write}' \\`,
      `            -H 'Content-Type: application/json' -d '[{"event_id":"e1","ts":"2026-01-01T00:00:00Z","name":"signup"}]'`,
      "",
    ].join("\n"),
  );
}

/** `tributary query`: runs SQL against the project's lake through the same sandbox as the HTTP API. */
export async function runQuery(sql: string, opts: { dir: string; json?: boolean }): Promise<void> {
  const pipeline = loadPipeline(opts.dir);
  if (!hasCatalog(pipeline)) {
    throw new TributaryError(
      "TRB_CATALOG_UNKNOWN_DATASET",
      `No catalog in ${pipeline.dataDir}; run \`tributary up\` first.`,
    );
  }
  const catalog = await openCatalog(pipeline, { readonly: true });
  const engine = await QueryEngine.create({
    catalog,
    lake: await openLake(pipeline),
    lakeDir: pipeline.lakeDir,
    extraReadDirs: pipeline.lakeReadDirs.filter((d) => d !== pipeline.lakeDir),
    tempDir: join(pipeline.dataDir, "duckdb-tmp-cli"),
    memoryLimit: pipeline.serve.memoryLimit,
    maxRows: pipeline.serve.maxRows,
    timeoutMs: pipeline.serve.queryTimeoutMs,
    maxConcurrent: 1,
  });
  try {
    const result = await engine.query(sql);
    if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else
      process.stdout.write(
        formatTable(
          result.columns.map((c) => c.name),
          result.rows,
        ),
      );
  } finally {
    engine.close();
    await catalog.close();
  }
}

/** `tributary catalog`: datasets with files, rows and time range. */
export async function runCatalog(project: string, opts: { json?: boolean }): Promise<void> {
  const pipeline = loadPipeline(project);
  if (!hasCatalog(pipeline)) {
    throw new TributaryError(
      "TRB_CATALOG_UNKNOWN_DATASET",
      `No catalog in ${pipeline.dataDir}; run \`tributary up\` first.`,
    );
  }
  const catalog = await openCatalog(pipeline, { readonly: true });
  try {
    const summary = await describeCatalog(catalog);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    process.stdout.write(`snapshot ${summary.snapshot}\n`);
    process.stdout.write(
      formatTable(
        ["dataset", "files", "rows", "bytes", "from", "to", "columns"],
        summary.datasets.map((d) => [
          d.name,
          d.files,
          d.rows,
          d.bytes,
          d.min_event_time ?? "",
          d.max_event_time ?? "",
          d.columns.map((c) => `${c.name} ${c.type}`).join(", "),
        ]),
      ),
    );
  } finally {
    await catalog.close();
  }
}

/** `tributary flush`: asks a running server to commit everything acknowledged. */
export async function runFlush(opts: { url: string; key?: string }): Promise<void> {
  if (!opts.key)
    throw new TributaryError("TRB_AUTH_MISSING", "Pass --key <admin secret> or set TRIBUTARY_KEY.");
  const res = await fetch(`${opts.url}/v1/flush`, {
    method: "POST",
    headers: { authorization: `Bearer ${opts.key}` },
  });
  const body = (await res.json()) as { error?: { code: string; message: string } };
  if (!res.ok)
    throw new Error(`${body.error?.code ?? res.status}: ${body.error?.message ?? "flush failed"}`);
  process.stdout.write(`${JSON.stringify(body)}\n`);
}

/** Left-aligned text table. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly unknown[])[],
): string {
  const cells = [
    header.map(String),
    ...rows.map((r) =>
      r.map((v) => (v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v))),
    ),
  ];
  const widths = header.map((_, i) =>
    Math.min(60, Math.max(...cells.map((r) => (r[i] ?? "").length))),
  );
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.slice(0, 60).padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return `${[line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n")}\n(${rows.length} rows)\n`;
}
