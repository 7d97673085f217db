// The embedded Stream: one SQLite table per stream, one row per append call, fsync'd group commit.
import { EventEmitter } from "node:events";
import { TributaryError } from "../../errors.js";
import type {
  AppendResult,
  ReadOptions,
  StoredRecord,
  Stream,
  StreamRecord,
  StreamSettings,
} from "../contracts/index.js";
import { openSqlite, type SqliteDatabase } from "./connection.js";
import { DedupWindow } from "./dedup-window.js";

interface Pending {
  readonly stream: string;
  readonly records: readonly StreamRecord[];
  readonly resolve: (r: AppendResult[]) => void;
  readonly reject: (e: unknown) => void;
}

interface OpenStream {
  readonly settings: StreamSettings;
  readonly dedup: DedupWindow;
  readonly insert: import("better-sqlite3").Statement;
  readonly select: import("better-sqlite3").Statement;
  /** Position the next record takes. */
  next: number;
}

/** A stored row: the records of one append call, positions `first .. first + count - 1`. */
interface BatchRow {
  first: number;
  count: number;
  ids: string;
  times: string;
  data: string;
}

/**
 * Stream backed by one SQLite file. Appends that arrive in the same event-loop turn are written in
 * one transaction and one fsync (group commit); each caller's promise resolves after that commit.
 *
 * @example
 * const log = new SqliteStream(".tributary/stream.db");
 * await log.open({ name: "flights", dedupWindowMs: 600_000, dedupMaxIds: 1e6, retainMs: 3.6e6 });
 * await log.append("flights", [{ id: "F1", time: Date.now(), data: "{}" }]);
 */
export class SqliteStream implements Stream {
  readonly capabilities = { partitions: 1 } as const;
  readonly #db: SqliteDatabase;
  readonly #streams = new Map<string, OpenStream>();
  readonly #appended = new EventEmitter();
  #pending: Pending[] = [];
  #scheduled = false;
  #closed = false;
  readonly #clock: () => number;
  readonly #setHead: import("better-sqlite3").Statement;

  constructor(path: string, options: { clock?: () => number } = {}) {
    this.#db = openSqlite(path);
    this.#clock = options.clock ?? Date.now;
    this.#appended.setMaxListeners(0);
    this.#db.exec(`CREATE TABLE IF NOT EXISTS consumers (
      stream TEXT NOT NULL, consumer TEXT NOT NULL, position INTEGER NOT NULL,
      PRIMARY KEY (stream, consumer))`);
    // The next position per stream, moved in the same transaction as the rows, so positions
    // never go back even when retention has deleted every row.
    this.#db.exec("CREATE TABLE IF NOT EXISTS heads (stream TEXT PRIMARY KEY, next INTEGER NOT NULL)");
    this.#setHead = this.#db.prepare(
      "INSERT INTO heads (stream, next) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET next = excluded.next",
    );
  }

  async open(settings: StreamSettings): Promise<void> {
    if (this.#streams.has(settings.name)) return;
    const table = tableName(settings.name);
    // One row per append call: the per-row cost of SQLite is paid per request, not per event.
    // Records are JSON texts without raw newlines, so a batch's data is the records joined by "\n".
    this.#db.exec(`CREATE TABLE IF NOT EXISTS ${table} (
      first INTEGER PRIMARY KEY, count INTEGER NOT NULL, received INTEGER NOT NULL,
      ids TEXT NOT NULL, times TEXT NOT NULL, data TEXT NOT NULL)`);
    const head = this.#db.prepare("SELECT next FROM heads WHERE stream = ?").get(settings.name) as { next: number } | undefined;
    const dedup = new DedupWindow(settings.dedupWindowMs, settings.dedupMaxIds);
    const cutoff = this.#clock() - settings.dedupWindowMs;
    // Reload the ids of the dedup window from the newest rows, so retries after a restart are
    // still recognized; then add them oldest first, as they were received.
    const recent: { first: number; received: number; ids: string[] }[] = [];
    let held = 0;
    for (const row of this.#db
      .prepare(`SELECT first, received, ids FROM ${table} ORDER BY first DESC`)
      .iterate() as IterableIterator<{ first: number; received: number; ids: string }>) {
      if (row.received < cutoff || held >= settings.dedupMaxIds) break;
      const ids = JSON.parse(row.ids) as string[];
      recent.push({ first: row.first, received: row.received, ids });
      held += ids.length;
    }
    for (let i = recent.length - 1; i >= 0; i--) {
      const r = recent[i]!;
      r.ids.forEach((id, j) => dedup.add(id, r.first + j, r.received));
    }
    this.#streams.set(settings.name, {
      settings,
      dedup,
      insert: this.#db.prepare(`INSERT INTO ${table} (first, count, received, ids, times, data) VALUES (?, ?, ?, ?, ?, ?)`),
      // The batch holding `from` (the greatest first <= from), then every later one.
      select: this.#db.prepare(
        `SELECT first, count, ids, times, data FROM ${table}
         WHERE first >= coalesce((SELECT max(first) FROM ${table} WHERE first <= ?), 0) ORDER BY first`,
      ),
      next: head?.next ?? 1,
    });
  }

  append(stream: string, records: readonly StreamRecord[]): Promise<AppendResult[]> {
    if (this.#closed) return Promise.reject(new TributaryError("TRB_STREAM_CLOSED"));
    this.#get(stream);
    return new Promise((resolve, reject) => {
      this.#pending.push({ stream, records, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Writes every pending append in one transaction, then settles their promises. */
  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    const now = this.#clock();
    const added: { dedup: DedupWindow; ids: string[] }[] = [];
    const results: AppendResult[][] = [];
    const touched = new Set<string>();
    try {
      this.#db.transaction(() => {
        for (const p of batch) {
          const s = this.#streams.get(p.stream)!;
          const ids: string[] = [];
          const times: number[] = [];
          const data: string[] = [];
          added.push({ dedup: s.dedup, ids });
          const out: AppendResult[] = [];
          const first = s.next;
          for (const r of p.records) {
            const seen = s.dedup.get(r.id, now);
            if (seen !== undefined) {
              out.push({ seq: seen, duplicate: true });
              continue;
            }
            const seq = first + ids.length;
            s.dedup.add(r.id, seq, now);
            ids.push(r.id);
            times.push(r.time);
            data.push(r.data);
            out.push({ seq, duplicate: false });
          }
          if (ids.length > 0) {
            s.insert.run(first, ids.length, now, JSON.stringify(ids), JSON.stringify(times), data.join("\n"));
            s.next = first + ids.length;
            touched.add(p.stream);
          }
          results.push(out);
        }
        for (const name of touched) this.#setHead.run(name, this.#streams.get(name)!.next);
      })();
    } catch (e) {
      for (const a of added) a.dedup.forget(a.ids);
      // The transaction rolled back: positions taken inside it are free again.
      for (const name of touched) this.#streams.get(name)!.next = this.#headOf(name);
      const err = new TributaryError("TRB_INTERNAL", `stream append failed: ${(e as Error).message}`, { cause: e });
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]!));
    for (const s of touched) this.#appended.emit(s);
  }

  async read(stream: string, from: number, options: ReadOptions): Promise<StoredRecord[]> {
    const s = this.#get(stream);
    const rows = this.#select(s, from, options.max);
    if (rows.length > 0 || !options.waitMs || this.#closed) return rows;
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
    return this.#select(s, from, options.max);
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

  async end(stream: string): Promise<number> {
    return this.#get(stream).next;
  }

  #headOf(stream: string): number {
    const row = this.#db.prepare("SELECT next FROM heads WHERE stream = ?").get(stream) as { next: number } | undefined;
    return row?.next ?? 1;
  }

  async register(stream: string, consumer: string): Promise<void> {
    this.#db
      .prepare("INSERT OR IGNORE INTO consumers (stream, consumer, position) VALUES (?, ?, 1)")
      .run(stream, consumer);
  }

  async commit(stream: string, consumer: string, position: number): Promise<void> {
    this.#db
      .prepare(
        `INSERT INTO consumers (stream, consumer, position) VALUES (?, ?, ?)
         ON CONFLICT (stream, consumer) DO UPDATE SET position = max(position, excluded.position)`,
      )
      .run(stream, consumer, position);
  }

  async trim(stream: string, now = this.#clock()): Promise<number> {
    const s = this.#get(stream);
    const row = this.#db
      .prepare("SELECT min(position) AS p FROM consumers WHERE stream = ?")
      .get(stream) as { p: number | null };
    if (row.p === null) return 0;
    const info = this.#db
      .prepare(`DELETE FROM ${tableName(stream)} WHERE first < ? AND first + count <= ? AND received < ?`)
      .run(row.p, row.p, now - s.settings.retainMs);
    return info.changes;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#flush();
    this.#db.close();
  }

  #get(stream: string): OpenStream {
    const s = this.#streams.get(stream);
    if (!s) throw new TributaryError("TRB_STREAM_UNKNOWN", `stream ${stream} is not open`);
    return s;
  }
}

/** Unquoted table name of a stream's log (stream names are validated, dead-letter streams end in `.dlq`). */
function rawTableName(stream: string): string {
  if (!/^[a-z][a-z0-9_]*(\.dlq)?$/.test(stream)) throw new Error(`invalid stream name ${stream}`);
  return `log_${stream}`;
}

function tableName(stream: string): string {
  return `"${rawTableName(stream)}"`;
}
