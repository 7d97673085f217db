// Baseline of http_to_stream: a bare Node `http` server that JSON.parses each body and appends every
// event with the same fsync'd group commit as the embedded stream, then acknowledges.
//
// Store `sqlite` (the default, what the case reports) is the embedded stream's own recipe
// (src/backends/sqlite/stream-writer.ts): better-sqlite3, WAL, synchronous=FULL, one row per request
// with its events as NDJSON, one transaction per event-loop turn, on the one thread. Store `file`
// appends NDJSON to one file and fdatasyncs once per turn: the ceiling quoted in DESIGN.md.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { STREAM, WRITE_KEY } from "../../flights.js";
import type { ServerHello } from "./tributary-server.js";

/** Options of the baseline server. */
export interface BaselineOptions {
  readonly store?: "sqlite" | "file";
}

interface Pending {
  readonly events: unknown[];
  readonly res: ServerResponse;
}

const PATH = `/v1/streams/${STREAM}/events`;
const AUTH = `Bearer ${WRITE_KEY.secret}`;

function main(): void {
  const options = JSON.parse(process.argv[2] ?? "{}") as BaselineOptions;
  const dir = mkdtempSync(join(tmpdir(), "trb-bench-baseline-"));
  const commit = options.store === "file" ? fileStore(dir) : sqliteStore(dir);
  let stored = 0;
  let pending: Pending[] = [];
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    const batch = pending;
    pending = [];
    try {
      stored += commit(batch);
    } catch (e) {
      for (const p of batch) reply(p.res, 500, { error: (e as Error).message });
      return;
    }
    for (const p of batch) reply(p.res, 200, { accepted: p.events.length });
  };

  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/stats") return reply(res, 200, { stored });
    if (req.method !== "POST" || req.url !== PATH) return reply(res, 404, { error: "not found" });
    if (req.headers.authorization !== AUTH) return reply(res, 401, { error: "bad key" });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let value: unknown;
      try {
        value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return reply(res, 400, { error: "malformed JSON" });
      }
      pending.push({ events: Array.isArray(value) ? value : [value], res });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    const hello: ServerHello = { url: `http://127.0.0.1:${port}`, pid: process.pid };
    process.stdout.write(JSON.stringify(hello) + "\n");
  });
  process.once("SIGTERM", () => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
}

/**
 * One transaction per turn, one row per request holding its events as NDJSON: the embedded
 * stream's layout (one row per append call, records joined by "\n"), without its ids and times.
 */
function sqliteStore(dir: string): (batch: readonly Pending[]) => number {
  const db = new Database(join(dir, "stream.db"));
  db.pragma("page_size = 32768"); // as the embedded stream (STREAM_PAGE_SIZE)
  db.pragma("wal_autocheckpoint = 32"); // as the embedded stream
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec(
    "CREATE TABLE log (first INTEGER PRIMARY KEY, count INTEGER NOT NULL, received INTEGER NOT NULL, data TEXT NOT NULL)",
  );
  const insert = db.prepare("INSERT INTO log (first, count, received, data) VALUES (?, ?, ?, ?)");
  let next = 1;
  const write = db.transaction((batch: readonly Pending[]) => {
    const now = Date.now();
    let n = 0;
    for (const p of batch) {
      const lines = p.events.map((e) => JSON.stringify(e));
      insert.run(next, lines.length, now, lines.join("\n"));
      next += lines.length;
      n += lines.length;
    }
    return n;
  });
  return (batch) => write(batch);
}

/** NDJSON appended to one file, one write and one fdatasync per turn. */
function fileStore(dir: string): (batch: readonly Pending[]) => number {
  const fd = openSync(join(dir, "stream.ndjson"), "a");
  process.once("exit", () => closeSync(fd));
  return (batch) => {
    const lines: string[] = [];
    for (const p of batch) for (const e of p.events) lines.push(JSON.stringify(e));
    writeSync(fd, lines.join("\n") + "\n");
    fdatasyncSync(fd);
    return lines.length;
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

main();
