// The embedded Stream: SQLite log written by a worker thread with fsync'd group commit, read in place.
import { EventEmitter } from "node:events";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { TributaryError } from "../../errors.js";
import {
  checkPartition,
  type AppendResult,
  type ReadOptions,
  type RecordBatch,
  type StoredRecord,
  type Stream,
  type StreamRecord,
  type StreamSettings,
} from "../contracts/index.js";
import { openSqlite, type SqliteDatabase } from "./connection.js";
import {
  logTable,
  serveWriter,
  type AppendReply,
  type WriterReply,
  type WriterRequest,
} from "./stream-writer.js";

/** A stored row: the records of one append call, positions `first .. first + count - 1`. */
interface BatchRow {
  first: number;
  count: number;
  ids: string;
  times: string;
  data: string;
}

interface OpenStream {
  readonly select: import("better-sqlite3").Statement;
  /** Position the next record takes, as last reported by the writer. */
  next: number;
}

/** Offset of line `n` (0-based) in newline-joined text. */
function lineOffset(text: string, n: number): number {
  let at = 0;
  for (let i = 0; i < n; i++) at = text.indexOf("\n", at) + 1;
  return at;
}

/** Distributes a request type over the writer's union. */
type Request = WriterRequest extends infer R
  ? R extends { req: number }
    ? Omit<R, "req">
    : never
  : never;

/**
 * Stream backed by one SQLite file (WAL, synchronous FULL), with one partition: `partition: 0`
 * reads the same as no partition, any other is a RangeError. Appends go to a writer in a worker
 * thread, which writes every append that arrives in one event-loop turn in one transaction and one
 * fsync (group commit); each append resolves after that commit. Reads use their own connection.
 *
 * @example
 * const log = new SqliteStream(".tributary/stream.db");
 * await log.open({ name: "flights", dedupWindowMs: 600_000, dedupMaxIds: 1e6, retainMs: 3.6e6 });
 * await log.append("flights", [{ id: "F1", time: Date.now(), data: "{}" }]);
 */
export class SqliteStream implements Stream {
  readonly capabilities = { partitions: 1, batches: true } as const;
  readonly #path: string;
  readonly #port: MessagePort | Worker;
  readonly #worker: Worker | undefined;
  readonly #calls = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: unknown) => void }
  >();
  readonly #streams = new Map<string, OpenStream>();
  readonly #appended = new EventEmitter();
  #reader: SqliteDatabase | undefined;
  #nextReq = 1;
  #closed = false;
  #failed: Error | undefined;

  /**
   * @param options.inProcess run the writer on this thread (tests that inject a clock; tools)
   * @param options.clock time source of the writer, only with `inProcess`
   */
  constructor(path: string, options: { inProcess?: boolean; clock?: () => number } = {}) {
    this.#path = path;
    this.#appended.setMaxListeners(0);
    if (options.inProcess || options.clock) {
      const { port1, port2 } = new MessageChannel();
      serveWriter(port2, path, options.clock);
      this.#port = port1;
      port1.on("message", (r: WriterReply) => this.#settle(r));
      // Let the process exit while the in-process writer sits idle.
      port1.unref();
      port2.unref();
    } else {
      this.#worker = startWriterWorker(path);
      this.#port = this.#worker;
      this.#worker.on("message", (r: WriterReply) => this.#settle(r));
      this.#worker.on("error", (e) => this.#fail(e));
      this.#worker.on("exit", (code) => {
        if (!this.#closed) this.#fail(new Error(`stream writer exited with code ${code}`));
      });
      this.#worker.unref();
    }
  }

  async open(settings: StreamSettings): Promise<void> {
    if (this.#streams.has(settings.name)) return;
    const next = (await this.#call({ op: "open", settings })) as number;
    this.#reader ??= openSqlite(this.#path, { readonly: true });
    const table = logTable(settings.name);
    this.#streams.set(settings.name, {
      // The batch holding `from` (the greatest first <= from), then every later one.
      select: this.#reader.prepare(
        `SELECT first, count, ids, times, data FROM ${table}
         WHERE first >= coalesce((SELECT max(first) FROM ${table} WHERE first <= ?), 0) ORDER BY first`,
      ),
      next,
    });
  }

  async append(stream: string, records: readonly StreamRecord[]): Promise<AppendResult[]> {
    if (this.#closed) throw new TributaryError("TRB_STREAM_CLOSED");
    const s = this.#get(stream);
    const n = records.length;
    if (n === 0) return [];
    const ids = new Array<string>(n);
    const times = new Float64Array(n);
    const data = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      ids[i] = r.id;
      times[i] = r.time;
      data[i] = r.data;
    }
    // Few large values cross to the writer thread, not three per record: structured cloning is
    // per value. Ids and records hold no line breaks; the times' buffer is moved, not copied.
    const reply = (await this.#call(
      { op: "append", stream, ids: ids.join("\n"), times, data: data.join("\n") },
      false,
      [times.buffer],
    )) as AppendReply;
    if (reply.next > s.next) {
      s.next = reply.next;
      this.#appended.emit(stream);
    }
    const dup = new Set(reply.duplicates);
    return reply.seqs.map((seq, i) => ({ seq, duplicate: dup.has(i) }));
  }

  async read(stream: string, from: number, options: ReadOptions): Promise<StoredRecord[]> {
    checkPartition(options.partition, this.capabilities.partitions);
    const s = this.#get(stream);
    const rows = this.#select(s, from, options.max);
    if (rows.length > 0 || !(await this.#waitForAppend(stream, options))) return rows;
    return this.#select(s, from, options.max);
  }

  async readBatches(stream: string, from: number, options: ReadOptions): Promise<RecordBatch[]> {
    checkPartition(options.partition, this.capabilities.partitions);
    const s = this.#get(stream);
    const batches = this.#selectBatches(s, from, options.max);
    if (batches.length > 0 || !(await this.#waitForAppend(stream, options))) return batches;
    return this.#selectBatches(s, from, options.max);
  }

  /** Waits (long poll) for an append; false when there is no point in reading again. */
  async #waitForAppend(stream: string, options: ReadOptions): Promise<boolean> {
    if (!options.waitMs || this.#closed || options.signal?.aborted) return false;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#appended.off(stream, done);
        options.signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, options.waitMs);
      this.#appended.on(stream, done);
      options.signal?.addEventListener("abort", done);
    });
    return !this.#closed;
  }

  /** Stored blocks from position `from`, the first cut to start at `from`, until `max` records. */
  #selectBatches(s: OpenStream, from: number, max: number): RecordBatch[] {
    const out: RecordBatch[] = [];
    if (from >= s.next) return out;
    let n = 0;
    for (const row of s.select.iterate(from) as IterableIterator<BatchRow>) {
      if (row.first + row.count <= from) continue;
      let times = JSON.parse(row.times) as number[];
      let { first, count, data } = row;
      if (from > first) {
        const skip = from - first;
        data = data.slice(lineOffset(data, skip));
        times = times.slice(skip);
        [first, count] = [from, count - skip];
      }
      out.push({ first, count, times, data });
      n += count;
      if (n >= max) break;
    }
    return out;
  }

  /** Records with positions >= from, at most `max`, expanded from their batch rows. */
  #select(s: OpenStream, from: number, max: number): StoredRecord[] {
    const out: StoredRecord[] = [];
    if (from >= s.next) return out;
    for (const row of s.select.iterate(from) as IterableIterator<BatchRow>) {
      if (row.first + row.count <= from) continue;
      const ids = JSON.parse(row.ids) as string[];
      const times = JSON.parse(row.times) as number[];
      const data = row.data.split("\n");
      for (let i = Math.max(0, from - row.first); i < row.count && out.length < max; i++) {
        out.push({ seq: row.first + i, id: ids[i]!, time: times[i]!, data: data[i]! });
      }
      if (out.length >= max) break;
    }
    return out;
  }

  async end(stream: string, partition?: number): Promise<number> {
    checkPartition(partition, this.capabilities.partitions);
    return this.#get(stream).next;
  }

  async register(stream: string, consumer: string): Promise<void> {
    this.#get(stream);
    await this.#call({ op: "register", stream, consumer });
  }

  async commit(stream: string, consumer: string, position: number): Promise<void> {
    this.#get(stream);
    await this.#call({ op: "commit", stream, consumer, position });
  }

  async trim(stream: string, now = Date.now()): Promise<number> {
    this.#get(stream);
    return (await this.#call({ op: "trim", stream, now })) as number;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#appended.emit("close");
    for (const name of this.#streams.keys()) this.#appended.emit(name);
    if (!this.#failed) await this.#call({ op: "close" }, true);
    if (this.#worker) await this.#worker.terminate();
    else (this.#port as MessagePort).close();
    this.#reader?.close();
  }

  #call(request: Request, closing = false, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#closed && !closing) return Promise.reject(new TributaryError("TRB_STREAM_CLOSED"));
    const req = this.#nextReq++;
    return new Promise((resolve, reject) => {
      // Keep the process alive while a call is pending; an idle writer must not.
      if (this.#calls.size === 0) this.#port.ref();
      this.#calls.set(req, { resolve, reject });
      this.#port.postMessage({ ...request, req }, transfer);
    });
  }

  #settle(r: WriterReply): void {
    const call = this.#calls.get(r.req);
    if (!call) return;
    this.#calls.delete(r.req);
    if (this.#calls.size === 0) this.#port.unref();
    if (r.error !== undefined) call.reject(new TributaryError("TRB_INTERNAL", r.error));
    else call.resolve(r.value);
  }

  #fail(e: Error): void {
    this.#failed = new TributaryError("TRB_INTERNAL", `stream writer failed: ${e.message}`, {
      cause: e,
    });
    for (const call of this.#calls.values()) call.reject(this.#failed);
    this.#calls.clear();
  }

  #get(stream: string): OpenStream {
    const s = this.#streams.get(stream);
    if (!s) throw new TributaryError("TRB_STREAM_UNKNOWN", `stream ${stream} is not open`);
    return s;
  }
}

/**
 * Starts the writer worker. Under tsx (tests, dev) the worker registers tsx itself first: Node 20
 * does not pass --import loaders on to workers.
 */
function startWriterWorker(path: string): Worker {
  const ts = import.meta.url.endsWith(".ts");
  const entry = new URL(`./stream-writer-worker${ts ? ".ts" : ".js"}`, import.meta.url).href;
  const boot = `const { workerData } = require("node:worker_threads");
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})();`;
  return new Worker(boot, {
    eval: true,
    workerData: { path, entry, tsx: ts ? import.meta.resolve("tsx/esm/api") : undefined },
  });
}
