// The writing half of the embedded Stream, run in a worker thread: dedup, group commit, fsync.
import type { MessagePort } from "node:worker_threads";
import type { StreamSettings } from "../contracts/index.js";
import { openSqlite, type SqliteDatabase } from "./connection.js";
import { DedupWindow } from "./dedup-window.js";

/** Requests the main thread sends to the writer. */
export type WriterRequest = { readonly req: number } & (
  | { readonly op: "open"; readonly settings: StreamSettings }
  | {
      readonly op: "append";
      readonly stream: string;
      /** Record ids joined by "\n" (ids hold no line breaks). */
      readonly ids: string;
      readonly times: Float64Array;
      /** The records' data joined by "\n". */
      readonly data: string;
    }
  | { readonly op: "register"; readonly stream: string; readonly consumer: string }
  | {
      readonly op: "commit";
      readonly stream: string;
      readonly consumer: string;
      readonly position: number;
    }
  | { readonly op: "trim"; readonly stream: string; readonly now: number }
  | { readonly op: "close" }
);

/** Replies: `value` on success, `error` (message) on failure. */
export interface WriterReply {
  readonly req: number;
  readonly value?: unknown;
  readonly error?: string;
}

/** The reply to an append: one position per record, and which records were duplicates. */
export interface AppendReply {
  readonly seqs: number[];
  readonly duplicates: number[];
  readonly next: number;
}

export interface Table {
  readonly settings: StreamSettings;
  readonly dedup: DedupWindow;
  readonly insert: import("better-sqlite3").Statement;
  next: number;
  /**
   * Ids older than the eagerly reloaded ones, filled in the background after a restart. They all
   * expire before anything in `dedup`, so the whole window is dropped once its newest id expires.
   */
  older: DedupWindow | undefined;
  olderNewest: number;
  /** The id stored at a position, or false when it is no longer stored (trimmed) or not yet written. */
  storedId(seq: number): string | false;
}

/** Page size of a new stream log: rows hold whole requests (tens of KiB), see `openSqlite`. */
export const STREAM_PAGE_SIZE = 32_768;

/** Ids reloaded before a stream opens; the rest of the window reloads in the background. */
const EAGER_IDS = 50_000;
/** Rows read per background query, and ids loaded per step: appends are served between steps. */
const RELOAD_ROWS = 500;
const RELOAD_IDS_PER_STEP = 10_000;

/**
 * The position of `id` if an earlier append stored it within the window, else undefined, in which
 * case `id` is now held at `seq` (the position it is about to be stored at).
 */
export function seenBefore(t: Table, id: string, seq: number, now: number): number | undefined {
  if (t.older !== undefined) {
    if (t.olderNewest < now - t.settings.dedupWindowMs) t.older = undefined;
    else {
      const old = t.older.get(id, now);
      const stored = old === undefined ? undefined : t.storedId(old);
      if (old !== undefined && (stored === false || stored === id)) return old;
    }
  }
  const held = t.dedup.add(id, seq, now);
  // The window holds fingerprints: a hit is a duplicate only if the stored id is the same one.
  if (held === undefined) return undefined;
  const stored = t.storedId(held);
  return stored === false || stored === id ? held : undefined;
}

interface PendingAppend {
  readonly req: Extract<WriterRequest, { op: "append" }>;
}

/** Unquoted table name of a stream's log (stream names are validated, dead-letter streams end in `.dlq`). */
export function logTable(stream: string): string {
  if (!/^[a-z][a-z0-9_]*(\.dlq)?$/.test(stream)) throw new Error(`invalid stream name ${stream}`);
  return `"log_${stream}"`;
}

/** Creates the tables of the stream log (idempotent). */
export function createStreamSchema(db: SqliteDatabase): void {
  db.exec(`CREATE TABLE IF NOT EXISTS consumers (
    stream TEXT NOT NULL, consumer TEXT NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (stream, consumer))`);
  // The next position per stream, moved in the same transaction as the rows, so positions
  // never go back even when retention has deleted every row.
  db.exec("CREATE TABLE IF NOT EXISTS heads (stream TEXT PRIMARY KEY, next INTEGER NOT NULL)");
}

/**
 * Serves writer requests on `port`. Appends received in the same event-loop turn are written in
 * one transaction with one fsync (group commit), then each is answered. Running in its own
 * thread, the fsync and the inserts never block the HTTP thread.
 */
export function serveWriter(port: MessagePort, path: string, clock: () => number = Date.now): void {
  const db = openSqlite(path, { pageSize: STREAM_PAGE_SIZE });
  // Checkpoint the WAL every ~1 MiB instead of SQLite's 1000 pages (32 MiB at this page size):
  // a checkpoint runs inside the commit that crosses the threshold, and copying 32 MiB held that
  // commit (and every ack waiting on it) for up to 80 ms; 1 MiB keeps it under ~5 ms.
  db.pragma(`wal_autocheckpoint = ${Math.ceil(1_048_576 / STREAM_PAGE_SIZE)}`);
  createStreamSchema(db);
  const tables = new Map<string, Table>();
  const setHead = db.prepare(
    "INSERT INTO heads (stream, next) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET next = excluded.next",
  );
  let pending: PendingAppend[] = [];
  let scheduled = false;
  let closed = false;

  const reply = (r: WriterReply): void => port.postMessage(r);

  const open = (settings: StreamSettings): number => {
    const existing = tables.get(settings.name);
    if (existing) return existing.next;
    const table = logTable(settings.name);
    // One row per append call: the per-row cost of SQLite is paid per request, not per event.
    // Records are JSON texts without raw newlines, so a batch's data is the records joined by "\n".
    db.exec(`CREATE TABLE IF NOT EXISTS ${table} (
      first INTEGER PRIMARY KEY, count INTEGER NOT NULL, received INTEGER NOT NULL,
      ids TEXT NOT NULL, times TEXT NOT NULL, data TEXT NOT NULL)`);
    const head = db.prepare("SELECT next FROM heads WHERE stream = ?").get(settings.name) as
      { next: number } | undefined;
    const dedup = new DedupWindow(settings.dedupWindowMs, settings.dedupMaxIds);
    // Reload the ids of the dedup window from the newest rows, so retries after a restart are
    // still recognized; then add them oldest first, as they were received. The newest EAGER_IDS
    // load now (the retries of requests cut by a crash are the newest); the rest of the window
    // loads in steps between appends, so a restart is ready in well under a second.
    const cutoff = clock() - settings.dedupWindowMs;
    const recent: { first: number; received: number; ids: string[] }[] = [];
    let held = 0;
    let below = Number.MAX_SAFE_INTEGER;
    for (const row of db
      .prepare(`SELECT first, received, ids FROM ${table} ORDER BY first DESC`)
      .iterate() as IterableIterator<{ first: number; received: number; ids: string }>) {
      if (row.received < cutoff || held >= Math.min(EAGER_IDS, settings.dedupMaxIds)) break;
      const ids = JSON.parse(row.ids) as string[];
      recent.push({ first: row.first, received: row.received, ids });
      held += ids.length;
      below = row.first;
    }
    for (let i = recent.length - 1; i >= 0; i--) {
      const r = recent[i]!;
      r.ids.forEach((id, j) => dedup.add(id, r.first + j, r.received));
    }
    const rowOf = db.prepare(
      `SELECT first, ids FROM ${table} WHERE first <= ? ORDER BY first DESC LIMIT 1`,
    );
    const t: Table = {
      settings,
      dedup,
      insert: db.prepare(
        `INSERT INTO ${table} (first, count, received, ids, times, data) VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      next: head?.next ?? 1,
      older: undefined,
      olderNewest: 0,
      // Rows written earlier in the current transaction are visible here (same connection).
      storedId: (seq) => {
        const row = rowOf.get(seq) as { first: number; ids: string } | undefined;
        if (!row) return false;
        return (JSON.parse(row.ids) as string[])[seq - row.first] ?? false;
      },
    };
    if (held >= EAGER_IDS && held < settings.dedupMaxIds) {
      const older = new DedupWindow(Number.MAX_SAFE_INTEGER, settings.dedupMaxIds);
      t.older = older;
      // Every older id was received no later than the oldest eagerly loaded one.
      t.olderNewest = recent[recent.length - 1]!.received;
      const step = db.prepare(
        `SELECT first, received, ids FROM ${table} WHERE first < ? ORDER BY first DESC LIMIT ${RELOAD_ROWS}`,
      );
      const loadStep = (): void => {
        if (closed || t.older !== older) return;
        const rows = step.all(below) as { first: number; received: number; ids: string }[];
        let loaded = 0;
        for (const row of rows) {
          // Bound one step's work so appends wait at most a few milliseconds behind it.
          if (loaded >= RELOAD_IDS_PER_STEP) {
            setImmediate(loadStep);
            return;
          }
          if (row.received < cutoff || held >= settings.dedupMaxIds) return;
          const ids = JSON.parse(row.ids) as string[];
          ids.forEach((id, j) => older.add(id, row.first + j, row.received));
          held += ids.length;
          loaded += ids.length;
          below = row.first;
        }
        if (rows.length === RELOAD_ROWS) setImmediate(loadStep);
      };
      setImmediate(loadStep);
    }
    tables.set(settings.name, t);
    return t.next;
  };

  const flush = (): void => {
    scheduled = false;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    const now = clock();
    const added: { dedup: DedupWindow; ids: string[] }[] = [];
    const results: AppendReply[] = [];
    const touched = new Map<Table, number>();
    try {
      db.transaction(() => {
        for (const { req } of batch) {
          const t = tables.get(req.stream);
          if (!t) throw new Error(`stream ${req.stream} is not open`);
          const ids: string[] = [];
          const times: number[] = [];
          added.push({ dedup: t.dedup, ids });
          const seqs: number[] = [];
          const duplicates: number[] = [];
          const first = t.next;
          const reqIds = req.ids.split("\n");
          for (let i = 0; i < reqIds.length; i++) {
            const id = reqIds[i]!;
            const seq = first + ids.length;
            const seen = seenBefore(t, id, seq, now);
            if (seen !== undefined) {
              seqs.push(seen);
              duplicates.push(i);
              continue;
            }
            ids.push(id);
            times.push(req.times[i]!);
            seqs.push(seq);
          }
          if (ids.length > 0) {
            // Without duplicates (the usual case) the joined text is stored as sent.
            let data = req.data;
            if (duplicates.length > 0) {
              const dup = new Set(duplicates);
              data = req.data
                .split("\n")
                .filter((_, i) => !dup.has(i))
                .join("\n");
            }
            t.insert.run(first, ids.length, now, JSON.stringify(ids), JSON.stringify(times), data);
            if (!touched.has(t)) touched.set(t, first);
            t.next = first + ids.length;
          }
          results.push({ seqs, duplicates, next: t.next });
        }
        for (const [t] of touched) setHead.run(t.settings.name, t.next);
      })();
    } catch (e) {
      // The transaction rolled back: forget its ids and free the positions it took.
      for (const a of added) a.dedup.forget(a.ids);
      for (const [t, first] of touched) t.next = first;
      for (const { req } of batch)
        reply({ req: req.req, error: `stream append failed: ${(e as Error).message}` });
      return;
    }
    batch.forEach(({ req }, i) => reply({ req: req.req, value: results[i] }));
  };

  port.on("message", (msg: WriterRequest) => {
    try {
      switch (msg.op) {
        case "append":
          pending.push({ req: msg });
          if (!scheduled) {
            scheduled = true;
            setImmediate(flush);
          }
          return;
        case "open":
          reply({ req: msg.req, value: open(msg.settings) });
          return;
        case "register":
          db.prepare(
            "INSERT OR IGNORE INTO consumers (stream, consumer, position) VALUES (?, ?, 1)",
          ).run(msg.stream, msg.consumer);
          reply({ req: msg.req });
          return;
        case "commit":
          db.prepare(
            `INSERT INTO consumers (stream, consumer, position) VALUES (?, ?, ?)
             ON CONFLICT (stream, consumer) DO UPDATE SET position = max(position, excluded.position)`,
          ).run(msg.stream, msg.consumer, msg.position);
          reply({ req: msg.req });
          return;
        case "trim": {
          const t = tables.get(msg.stream);
          const row = db
            .prepare("SELECT min(position) AS p FROM consumers WHERE stream = ?")
            .get(msg.stream) as {
            p: number | null;
          };
          if (!t || row.p === null) {
            reply({ req: msg.req, value: 0 });
            return;
          }
          const deleted = db
            .prepare(
              `DELETE FROM ${logTable(msg.stream)} WHERE first < ? AND first + count <= ? AND received < ? RETURNING count`,
            )
            .pluck()
            .all(row.p, row.p, msg.now - t.settings.retainMs) as number[];
          reply({ req: msg.req, value: deleted.reduce((a, b) => a + b, 0) });
          return;
        }
        case "close":
          closed = true;
          flush();
          db.close();
          reply({ req: msg.req });
          port.close();
          return;
      }
    } catch (e) {
      reply({ req: msg.req, error: (e as Error).message });
    }
  });
}
