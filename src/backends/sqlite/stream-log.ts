// The embedded Stream: one SQLite table per stream, appended with fsync'd group commit.
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

  constructor(path: string, options: { clock?: () => number } = {}) {
    this.#db = openSqlite(path);
    this.#clock = options.clock ?? Date.now;
    this.#appended.setMaxListeners(0);
    this.#db.exec(`CREATE TABLE IF NOT EXISTS consumers (
      stream TEXT NOT NULL, consumer TEXT NOT NULL, position INTEGER NOT NULL,
      PRIMARY KEY (stream, consumer))`);
  }

  async open(settings: StreamSettings): Promise<void> {
    if (this.#streams.has(settings.name)) return;
    const table = tableName(settings.name);
    // AUTOINCREMENT keeps positions increasing even after retention deleted every row.
    this.#db.exec(`CREATE TABLE IF NOT EXISTS ${table} (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, time INTEGER NOT NULL,
      received INTEGER NOT NULL, data TEXT NOT NULL)`);
    const dedup = new DedupWindow(settings.dedupWindowMs, settings.dedupMaxIds);
    const cutoff = this.#clock() - settings.dedupWindowMs;
    const recent = this.#db
      .prepare(`SELECT seq, id, received FROM ${table} ORDER BY seq DESC LIMIT ?`)
      .all(settings.dedupMaxIds) as { seq: number; id: string; received: number }[];
    for (let i = recent.length - 1; i >= 0; i--) {
      const r = recent[i]!;
      if (r.received >= cutoff) dedup.add(r.id, r.seq, r.received);
    }
    this.#streams.set(settings.name, {
      settings,
      dedup,
      insert: this.#db.prepare(`INSERT INTO ${table} (id, time, received, data) VALUES (?, ?, ?, ?)`),
      select: this.#db.prepare(`SELECT seq, id, time, data FROM ${table} WHERE seq >= ? ORDER BY seq LIMIT ?`),
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
          added.push({ dedup: s.dedup, ids });
          const out: AppendResult[] = [];
          for (const r of p.records) {
            const seen = s.dedup.get(r.id, now);
            if (seen !== undefined) {
              out.push({ seq: seen, duplicate: true });
              continue;
            }
            const seq = Number(s.insert.run(r.id, r.time, now, r.data).lastInsertRowid);
            s.dedup.add(r.id, seq, now);
            ids.push(r.id);
            out.push({ seq, duplicate: false });
          }
          results.push(out);
          touched.add(p.stream);
        }
      })();
    } catch (e) {
      for (const a of added) a.dedup.forget(a.ids);
      const err = new TributaryError("TRB_INTERNAL", `stream append failed: ${(e as Error).message}`, { cause: e });
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]!));
    for (const s of touched) this.#appended.emit(s);
  }

  async read(stream: string, from: number, options: ReadOptions): Promise<StoredRecord[]> {
    const s = this.#get(stream);
    const rows = s.select.all(from, options.max) as StoredRecord[];
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
    return s.select.all(from, options.max) as StoredRecord[];
  }

  async end(stream: string): Promise<number> {
    this.#get(stream);
    const row = this.#db
      .prepare("SELECT seq FROM sqlite_sequence WHERE name = ?")
      .get(rawTableName(stream)) as { seq: number } | undefined;
    return (row?.seq ?? 0) + 1;
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
      .prepare(`DELETE FROM ${tableName(stream)} WHERE seq < ? AND received < ?`)
      .run(row.p, now - s.settings.retainMs);
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
