// The embedded Catalog: datasets, schema versions, files, snapshots, stream positions and batch records in one SQLite file.
import { TributaryError } from "../../errors.js";
import type {
  BatchRunInfo,
  BatchTaskInfo,
  CatalogStore,
  Commit,
  DatasetDefinition,
  DatasetInfo,
  DatasetRef,
  PartitionState,
  SchemaColumn,
  SchemaVersionInfo,
  SnapshotInfo,
  SpeedCheckpoint,
  StoredFile,
  TestResultInfo,
} from "../contracts/index.js";
import {
  BATCH_TABLES,
  catalogDdl,
  toDataset,
  toRun,
  type DatasetRow,
  type FileRow,
  type PartitionRow,
  type RunRow,
  type TaskRow,
  type TestResultRow,
} from "../catalog-schema.js";
import { openSqlite, type SqliteDatabase } from "./connection.js";

/**
 * The catalog tables in SQLite's dialect, rendered from the definition the PostgreSQL catalog
 * shares (`catalog-schema.ts`), in the very text catalogs were always created with. Every
 * statement is `IF NOT EXISTS`, so a writable open upgrades a catalog of an older version.
 */
export const CATALOG_DDL = catalogDdl("sqlite");

/** Upserts one partition state; shared by `commit` and `setPartitions`, which replace every column. */
const PARTITION_UPSERT = `
INSERT INTO batch_partitions (model, day, status, model_hash, input_snapshot, built_at, run_id, row_count, reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (model, day) DO UPDATE SET status = excluded.status, model_hash = excluded.model_hash,
  input_snapshot = excluded.input_snapshot, built_at = excluded.built_at, run_id = excluded.run_id,
  row_count = excluded.row_count, reason = excluded.reason`;

/**
 * CatalogStore on SQLite (WAL, synchronous FULL): a commit is one SQLite transaction, durable
 * when it returns, and so is every batch record write. Readers in other processes (the CLI) may
 * open the same file read-only.
 */
export class SqliteCatalog implements CatalogStore {
  readonly #db: SqliteDatabase;
  /** Whether the batch tables are known to exist (always, once a writable open ran the DDL). */
  #batchTables: boolean;

  constructor(path: string, options: { readonly?: boolean } = {}) {
    this.#db = openSqlite(path, options);
    if (!options.readonly) this.#db.exec(CATALOG_DDL);
    this.#batchTables = !options.readonly;
  }

  async ensureDataset(ref: DatasetRef, def: DatasetDefinition): Promise<DatasetInfo> {
    const now = new Date().toISOString();
    const columns = JSON.stringify(def.columns);
    this.#db.transaction(() => {
      this.#db
        .prepare(
          `INSERT INTO datasets (layer, name, kind, description, partition_columns, created_at)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (layer, name) DO UPDATE SET description = excluded.description, kind = excluded.kind`,
        )
        .run(
          ref.layer,
          ref.name,
          def.kind,
          def.description ?? null,
          JSON.stringify(def.partitionColumns),
          now,
        );
      const { id } = this.#db
        .prepare("SELECT id FROM datasets WHERE layer = ? AND name = ?")
        .get(ref.layer, ref.name) as {
        id: number;
      };
      const latest = this.#db
        .prepare(
          "SELECT version, columns FROM schema_versions WHERE dataset_id = ? ORDER BY version DESC LIMIT 1",
        )
        .get(id) as { version: number; columns: string } | undefined;
      if (latest?.columns !== columns) {
        this.#db
          .prepare(
            "INSERT INTO schema_versions (dataset_id, version, columns, created_at) VALUES (?, ?, ?, ?)",
          )
          .run(id, (latest?.version ?? 0) + 1, columns, now);
      }
    })();
    return (await this.dataset(ref))!;
  }

  async datasets(): Promise<DatasetInfo[]> {
    return (
      this.#db.prepare(`${DATASET_SELECT} ORDER BY d.layer, d.name`).all() as DatasetRow[]
    ).map(toDataset);
  }

  async dataset(ref: DatasetRef): Promise<DatasetInfo | undefined> {
    const row = this.#db
      .prepare(`${DATASET_SELECT} WHERE d.layer = ? AND d.name = ?`)
      .get(ref.layer, ref.name) as DatasetRow | undefined;
    return row ? toDataset(row) : undefined;
  }

  async schemaVersions(ref: DatasetRef): Promise<SchemaVersionInfo[]> {
    const rows = this.#db
      .prepare(
        `SELECT v.version, v.columns, v.created_at FROM schema_versions v JOIN datasets d ON d.id = v.dataset_id
         WHERE d.layer = ? AND d.name = ? ORDER BY v.version`,
      )
      .all(ref.layer, ref.name) as { version: number; columns: string; created_at: string }[];
    return rows.map((r) => ({
      version: r.version,
      columns: JSON.parse(r.columns) as SchemaColumn[],
      createdAt: r.created_at,
    }));
  }

  async commit(commit: Commit): Promise<SnapshotInfo> {
    const now = new Date().toISOString();
    const name = `${commit.dataset.layer}.${commit.dataset.name}`;
    return this.#db.transaction((): SnapshotInfo => {
      const ds = this.#db
        .prepare(
          `SELECT d.id, max(v.version) AS version FROM datasets d JOIN schema_versions v ON v.dataset_id = d.id
           WHERE d.layer = ? AND d.name = ? GROUP BY d.id`,
        )
        .get(commit.dataset.layer, commit.dataset.name) as
        { id: number; version: number } | undefined;
      if (!ds) throw new TributaryError("TRB_CATALOG_UNKNOWN_DATASET", `no dataset ${name}`);
      for (const p of commit.positions ?? []) {
        const cur = this.#db
          .prepare("SELECT position FROM positions WHERE consumer = ? AND stream = ? AND part = ?")
          .get(p.consumer, p.stream, p.partition) as { position: number } | undefined;
        const stored = cur?.position ?? 0;
        if (stored !== p.from) {
          throw new TributaryError(
            "TRB_CATALOG_CONFLICT",
            `position of ${p.consumer} on ${p.stream}/${p.partition} is ${stored}, not ${p.from}`,
          );
        }
      }
      const removed = commit.remove ?? [];
      const snap = this.#db
        .prepare(
          `INSERT INTO snapshots (dataset_id, committed_at, summary, files_added, files_removed) VALUES (?, ?, ?, ?, ?)`,
        )
        .run(ds.id, now, commit.summary, commit.add.length, removed.length);
      const id = Number(snap.lastInsertRowid);
      const insert = this.#db.prepare(
        `INSERT INTO files (path, dataset_id, partition_values, row_count, bytes, min_time, max_time, schema_version, added_in)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const f of commit.add) {
        insert.run(
          f.path,
          ds.id,
          JSON.stringify(f.partition),
          f.rows,
          f.bytes,
          f.minTime,
          f.maxTime,
          ds.version,
          id,
        );
      }
      const remove = this.#db.prepare(
        "UPDATE files SET removed_in = ? WHERE path = ? AND dataset_id = ? AND removed_in IS NULL",
      );
      for (const path of removed) {
        if (remove.run(id, path, ds.id).changes !== 1) {
          throw new TributaryError("TRB_CATALOG_CONFLICT", `file ${path} is not live in ${name}`);
        }
      }
      const upsert = this.#db.prepare(
        `INSERT INTO positions (consumer, stream, part, position, snapshot_id) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (consumer, stream, part) DO UPDATE SET position = excluded.position, snapshot_id = excluded.snapshot_id`,
      );
      for (const p of commit.positions ?? [])
        upsert.run(p.consumer, p.stream, p.partition, p.to, id);
      // Last: every check above has passed, and a throw here still rolls back the whole commit.
      this.#writePartitions(commit.partitions ?? []);
      return {
        id,
        committedAt: now,
        dataset: name,
        summary: commit.summary,
        filesAdded: commit.add.length,
        filesRemoved: removed.length,
      };
    })();
  }

  async files(ref: DatasetRef, snapshot?: number): Promise<StoredFile[]> {
    const at = snapshot ?? Number.MAX_SAFE_INTEGER;
    const rows = this.#db
      .prepare(
        `SELECT f.path, d.layer || '.' || d.name AS dataset, f.partition_values, f.row_count, f.bytes, f.min_time,
                f.max_time, f.schema_version, f.added_in
         FROM files f JOIN datasets d ON d.id = f.dataset_id
         WHERE d.layer = ? AND d.name = ? AND f.added_in <= ? AND (f.removed_in IS NULL OR f.removed_in > ?)
         ORDER BY f.added_in, f.path`,
      )
      .all(ref.layer, ref.name, at, at) as FileRow[];
    return rows.map((r) => ({
      path: r.path,
      dataset: r.dataset,
      partition: JSON.parse(r.partition_values) as Record<string, string>,
      rows: r.row_count,
      bytes: r.bytes,
      minTime: r.min_time,
      maxTime: r.max_time,
      schemaVersion: r.schema_version,
      addedIn: r.added_in,
    }));
  }

  async livePaths(): Promise<Set<string>> {
    const rows = this.#db
      .prepare("SELECT path FROM files WHERE removed_in IS NULL")
      .pluck()
      .all() as string[];
    return new Set(rows);
  }

  async speedCheckpoint(view: string): Promise<SpeedCheckpoint | undefined> {
    if (!this.#hasTable("speed_checkpoints")) return undefined;
    const row = this.#db
      .prepare(
        "SELECT view, view_hash, position, max_time, late, state, saved_at FROM speed_checkpoints WHERE view = ?",
      )
      .get(view) as
      | {
          view: string;
          view_hash: string;
          position: number;
          max_time: number | null;
          late: number;
          state: Buffer;
          saved_at: string;
        }
      | undefined;
    if (!row) return undefined;
    return {
      view: row.view,
      viewHash: row.view_hash,
      position: row.position,
      maxTime: row.max_time,
      late: row.late,
      state: new Uint8Array(row.state),
      savedAt: row.saved_at,
    };
  }

  async saveSpeedCheckpoint(c: Omit<SpeedCheckpoint, "savedAt">): Promise<void> {
    this.#db
      .prepare(
        `INSERT INTO speed_checkpoints (view, view_hash, position, max_time, late, state, saved_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (view) DO UPDATE SET view_hash = excluded.view_hash, position = excluded.position,
           max_time = excluded.max_time, late = excluded.late, state = excluded.state,
           saved_at = excluded.saved_at`,
      )
      .run(
        c.view,
        c.viewHash,
        c.position,
        c.maxTime,
        c.late,
        Buffer.from(c.state),
        new Date().toISOString(),
      );
  }

  async registeredPaths(): Promise<Set<string>> {
    return new Set(this.#db.prepare("SELECT path FROM files").pluck().all() as string[]);
  }

  async position(consumer: string, stream: string, partition: number): Promise<number> {
    const row = this.#db
      .prepare("SELECT position FROM positions WHERE consumer = ? AND stream = ? AND part = ?")
      .get(consumer, stream, partition) as { position: number } | undefined;
    return row?.position ?? 0;
  }

  async latestSnapshot(): Promise<number> {
    const row = this.#db.prepare("SELECT max(id) AS id FROM snapshots").get() as {
      id: number | null;
    };
    return row.id ?? 0;
  }

  async snapshots(limit: number): Promise<SnapshotInfo[]> {
    const rows = this.#db
      .prepare(
        `SELECT s.id, s.committed_at, d.layer || '.' || d.name AS dataset, s.summary, s.files_added, s.files_removed
         FROM snapshots s JOIN datasets d ON d.id = s.dataset_id ORDER BY s.id DESC LIMIT ?`,
      )
      .all(limit) as {
      id: number;
      committed_at: string;
      dataset: string;
      summary: string;
      files_added: number;
      files_removed: number;
    }[];
    return rows.map((r) => ({
      id: r.id,
      committedAt: r.committed_at,
      dataset: r.dataset,
      summary: r.summary,
      filesAdded: r.files_added,
      filesRemoved: r.files_removed,
    }));
  }

  async partitions(model?: string): Promise<PartitionState[]> {
    if (!this.#hasBatchTables()) return [];
    // Ordered by code point (SQLite's BINARY collation), the order the contract promises.
    const rows = (
      model === undefined
        ? this.#db.prepare(`${PARTITION_SELECT} ORDER BY model, day`).all()
        : this.#db.prepare(`${PARTITION_SELECT} WHERE model = ? ORDER BY model, day`).all(model)
    ) as PartitionRow[];
    return rows.map((r) => ({
      model: r.model,
      day: r.day,
      status: r.status,
      modelHash: r.model_hash,
      inputSnapshot: r.input_snapshot,
      builtAt: r.built_at,
      runId: r.run_id,
      rows: r.row_count,
      reason: r.reason,
    }));
  }

  async setPartitions(states: readonly PartitionState[]): Promise<void> {
    this.#db.transaction(() => this.#writePartitions(states))();
  }

  async startRun(run: { trigger: string; days: readonly string[] }): Promise<number> {
    const result = this.#db
      .prepare(
        `INSERT INTO batch_runs (trigger, status, started_at, finished_at, days, error)
         VALUES (?, 'running', ?, NULL, ?, NULL)`,
      )
      .run(run.trigger, new Date().toISOString(), JSON.stringify(run.days));
    return Number(result.lastInsertRowid);
  }

  async finishRun(id: number, status: BatchRunInfo["status"], error?: string): Promise<void> {
    const result = this.#db
      .prepare("UPDATE batch_runs SET status = ?, finished_at = ?, error = ? WHERE id = ?")
      .run(status, new Date().toISOString(), error ?? null, id);
    if (result.changes !== 1) {
      throw new TributaryError("TRB_CATALOG_CONFLICT", `no batch run ${id} to finish`);
    }
  }

  async recordTask(task: BatchTaskInfo): Promise<void> {
    this.#db
      .prepare(
        `INSERT INTO batch_tasks (run_id, model, days, status, attempts, started_at, ms, rows_in, rows_out, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        task.runId,
        task.model,
        JSON.stringify(task.days),
        task.status,
        task.attempts,
        task.startedAt,
        task.ms,
        task.rowsIn,
        task.rowsOut,
        task.error,
      );
  }

  async recordTests(results: readonly TestResultInfo[]): Promise<void> {
    const insert = this.#db.prepare(
      `INSERT INTO batch_test_results (run_id, model, day, test, passed, failures, message)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#db.transaction(() => {
      for (const r of results) {
        insert.run(r.runId, r.model, r.day, r.test, r.passed ? 1 : 0, r.failures, r.message);
      }
    })();
  }

  async runs(limit: number): Promise<BatchRunInfo[]> {
    if (!this.#hasBatchTables()) return [];
    const rows = this.#db.prepare(`${RUN_SELECT} ORDER BY id DESC LIMIT ?`).all(limit) as RunRow[];
    return rows.map(toRun);
  }

  async run(id: number): Promise<BatchRunInfo | undefined> {
    if (!this.#hasBatchTables()) return undefined;
    const row = this.#db.prepare(`${RUN_SELECT} WHERE id = ?`).get(id) as RunRow | undefined;
    return row ? toRun(row) : undefined;
  }

  async tasks(runId: number): Promise<BatchTaskInfo[]> {
    if (!this.#hasBatchTables()) return [];
    const rows = this.#db
      .prepare(
        `SELECT run_id, model, days, status, attempts, started_at, ms, rows_in, rows_out, error
         FROM batch_tasks WHERE run_id = ? ORDER BY id`,
      )
      .all(runId) as TaskRow[];
    return rows.map((r) => ({
      runId: r.run_id,
      model: r.model,
      days: JSON.parse(r.days) as string[],
      status: r.status,
      attempts: r.attempts,
      startedAt: r.started_at,
      ms: r.ms,
      rowsIn: r.rows_in,
      rowsOut: r.rows_out,
      error: r.error,
    }));
  }

  async testResults(filter: { runId?: number; model?: string }): Promise<TestResultInfo[]> {
    if (!this.#hasBatchTables()) return [];
    const where: string[] = [];
    const params: (number | string)[] = [];
    if (filter.runId !== undefined) {
      where.push("run_id = ?");
      params.push(filter.runId);
    }
    if (filter.model !== undefined) {
      where.push("model = ?");
      params.push(filter.model);
    }
    const rows = this.#db
      .prepare(
        `SELECT run_id, model, day, test, passed, failures, message FROM batch_test_results
         ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id`,
      )
      .all(...params) as TestResultRow[];
    return rows.map((r) => ({
      runId: r.run_id,
      model: r.model,
      day: r.day,
      test: r.test,
      passed: r.passed !== 0,
      failures: r.failures,
      message: r.message,
    }));
  }

  async close(): Promise<void> {
    this.#db.close();
  }

  /** Upserts partition states; the caller holds the transaction. */
  #writePartitions(states: readonly PartitionState[]): void {
    if (states.length === 0) return;
    const upsert = this.#db.prepare(PARTITION_UPSERT);
    for (const p of states) {
      upsert.run(
        p.model,
        p.day,
        p.status,
        p.modelHash,
        p.inputSnapshot,
        p.builtAt,
        p.runId,
        p.rows,
        p.reason,
      );
    }
  }

  /**
   * Whether the batch tables exist. A read-only open (the CLI) of a catalog last written by a
   * version without the batch layer has none, and then has no batch records to show: reads return
   * nothing instead of failing with "no such table". Checked again until found, since a writer in
   * another process creates them when it opens the file.
   */
  /** Whether a table exists (a read-only open of an older catalog may lack it). */
  #hasTable(name: string): boolean {
    return (
      (this.#db
        .prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
        .pluck()
        .get(name) as number) > 0
    );
  }

  #hasBatchTables(): boolean {
    if (this.#batchTables) return true;
    const found = this.#db
      .prepare(
        `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (${BATCH_TABLES.map(() => "?").join(", ")})`,
      )
      .pluck()
      .get(...BATCH_TABLES) as number;
    this.#batchTables = found === BATCH_TABLES.length;
    return this.#batchTables;
  }
}

const PARTITION_SELECT = `
SELECT model, day, status, model_hash, input_snapshot, built_at, run_id, row_count, reason
FROM batch_partitions`;

const RUN_SELECT = `SELECT id, trigger, status, started_at, finished_at, days, error FROM batch_runs`;

const DATASET_SELECT = `
SELECT d.id, d.layer, d.name, d.kind, d.description, d.partition_columns, d.created_at, v.version, v.columns
FROM datasets d JOIN schema_versions v ON v.dataset_id = d.id
  AND v.version = (SELECT max(version) FROM schema_versions WHERE dataset_id = d.id)`;
