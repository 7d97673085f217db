// The distributed Catalog: the SQLite catalog's tables and semantics on PostgreSQL, safe for committers in many processes.
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
import {
  connectPostgres,
  type PgQueryable,
  type PgTransaction,
  type PostgresConnection,
  type PostgresOptions,
} from "./connection.js";

/**
 * The advisory lock every catalog write that reads before it writes holds (commit, ensureDataset,
 * setPartitions, the DDL at open): the one writer at a time that SQLite has by construction.
 */
const WRITE_LOCK = "catalog";

interface CheckpointRow {
  view: string;
  view_hash: string;
  position: number;
  max_time: number | null;
  late: number;
  state: Buffer;
  saved_at: string;
}

/** Schema-qualified names of the catalog tables. */
interface Tables {
  readonly datasets: string;
  readonly schemaVersions: string;
  readonly snapshots: string;
  readonly files: string;
  readonly positions: string;
  readonly partitions: string;
  readonly runs: string;
  readonly tasks: string;
  readonly testResults: string;
  readonly checkpoints: string;
}

/**
 * CatalogStore on PostgreSQL, with the SQLite catalog's tables (both render `catalog-schema.ts`)
 * and its results, order and errors. Every write is one transaction, durable when it resolves.
 * Writes that check before they write hold one advisory lock per catalog, so any number of
 * processes may commit: snapshot ids stay dense and in commit order, and of two commits from the
 * same stream position one lands and the other throws TRB_CATALOG_CONFLICT.
 * @example
 * const catalog = await PostgresCatalog.open({ url: "postgres://postgres@127.0.0.1:5432/test" });
 */
export class PostgresCatalog implements CatalogStore {
  readonly #db: PostgresConnection;
  readonly #t: Tables;

  private constructor(db: PostgresConnection) {
    this.#db = db;
    const t = (name: string): string => db.table(name);
    this.#t = {
      datasets: t("datasets"),
      schemaVersions: t("schema_versions"),
      snapshots: t("snapshots"),
      files: t("files"),
      positions: t("positions"),
      partitions: t("batch_partitions"),
      runs: t("batch_runs"),
      tasks: t("batch_tasks"),
      testResults: t("batch_test_results"),
      checkpoints: t("speed_checkpoints"),
    };
  }

  /**
   * Connects and creates the schema and any missing table (`IF NOT EXISTS`, under the write lock,
   * so processes opening a new catalog together do not race).
   */
  static async open(options: PostgresOptions): Promise<PostgresCatalog> {
    const db = await connectPostgres(options);
    try {
      await db.transaction(async (tx) => {
        await tx.lock(WRITE_LOCK);
        await tx.query(catalogDdl("postgres", { schema: db.schema }));
      });
    } catch (e) {
      await db.close();
      throw e;
    }
    return new PostgresCatalog(db);
  }

  async ensureDataset(ref: DatasetRef, def: DatasetDefinition): Promise<DatasetInfo> {
    const now = new Date().toISOString();
    const columns = JSON.stringify(def.columns);
    const t = this.#t;
    await this.#db.transaction(async (tx) => {
      await tx.lock(WRITE_LOCK);
      const found = await tx.query<{ id: number }>(
        `SELECT id FROM ${t.datasets} WHERE layer = $1 AND name = $2`,
        [ref.layer, ref.name],
      );
      let id = found.rows[0]?.id;
      if (id === undefined) {
        // max + 1 under the lock: the id SQLite's INTEGER PRIMARY KEY assigns.
        const inserted = await tx.query<{ id: number }>(
          `INSERT INTO ${t.datasets} (id, layer, name, kind, description, partition_columns, created_at)
           SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6 FROM ${t.datasets} RETURNING id`,
          [
            ref.layer,
            ref.name,
            def.kind,
            def.description ?? null,
            JSON.stringify(def.partitionColumns),
            now,
          ],
        );
        id = inserted.rows[0]!.id;
      } else {
        await tx.query(`UPDATE ${t.datasets} SET description = $1, kind = $2 WHERE id = $3`, [
          def.description ?? null,
          def.kind,
          id,
        ]);
      }
      const latest = await tx.query<{ version: number; columns: string }>(
        `SELECT version, columns FROM ${t.schemaVersions} WHERE dataset_id = $1 ORDER BY version DESC LIMIT 1`,
        [id],
      );
      const last = latest.rows[0];
      if (last?.columns !== columns) {
        await tx.query(
          `INSERT INTO ${t.schemaVersions} (dataset_id, version, columns, created_at) VALUES ($1, $2, $3, $4)`,
          [id, (last?.version ?? 0) + 1, columns, now],
        );
      }
    });
    return (await this.dataset(ref))!;
  }

  async datasets(): Promise<DatasetInfo[]> {
    const { rows } = await this.#db.query<DatasetRow>(
      `${this.#datasetSelect()} ORDER BY d.layer, d.name`,
    );
    return rows.map(toDataset);
  }

  async dataset(ref: DatasetRef): Promise<DatasetInfo | undefined> {
    const { rows } = await this.#db.query<DatasetRow>(
      `${this.#datasetSelect()} WHERE d.layer = $1 AND d.name = $2`,
      [ref.layer, ref.name],
    );
    return rows[0] ? toDataset(rows[0]) : undefined;
  }

  async schemaVersions(ref: DatasetRef): Promise<SchemaVersionInfo[]> {
    const t = this.#t;
    const { rows } = await this.#db.query<{
      version: number;
      columns: string;
      created_at: string;
    }>(
      `SELECT v.version, v.columns, v.created_at FROM ${t.schemaVersions} v JOIN ${t.datasets} d ON d.id = v.dataset_id
       WHERE d.layer = $1 AND d.name = $2 ORDER BY v.version`,
      [ref.layer, ref.name],
    );
    return rows.map((r) => ({
      version: Number(r.version),
      columns: JSON.parse(r.columns) as SchemaColumn[],
      createdAt: r.created_at,
    }));
  }

  async commit(commit: Commit): Promise<SnapshotInfo> {
    const name = `${commit.dataset.layer}.${commit.dataset.name}`;
    const t = this.#t;
    return this.#db.transaction(async (tx): Promise<SnapshotInfo> => {
      // Taken first, so every read below sees the commits that came before this one.
      await tx.lock(WRITE_LOCK);
      const now = new Date().toISOString();
      const found = await tx.query<{ id: number; version: number }>(
        `SELECT d.id, max(v.version) AS version FROM ${t.datasets} d
         JOIN ${t.schemaVersions} v ON v.dataset_id = d.id
         WHERE d.layer = $1 AND d.name = $2 GROUP BY d.id`,
        [commit.dataset.layer, commit.dataset.name],
      );
      const ds = found.rows[0];
      if (!ds) throw new TributaryError("TRB_CATALOG_UNKNOWN_DATASET", `no dataset ${name}`);
      for (const p of commit.positions ?? []) {
        const stored = await this.#position(tx, p.consumer, p.stream, p.partition);
        if (stored !== p.from) {
          throw new TributaryError(
            "TRB_CATALOG_CONFLICT",
            `position of ${p.consumer} on ${p.stream}/${p.partition} is ${stored}, not ${p.from}`,
          );
        }
      }
      const removed = commit.remove ?? [];
      // Dense ids in commit order: the lock makes max + 1 safe, where a sequence would leave
      // gaps on rollback and could hand a later commit a smaller id.
      const snap = await tx.query<{ id: number }>(
        `INSERT INTO ${t.snapshots} (id, dataset_id, committed_at, summary, files_added, files_removed)
         SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5 FROM ${t.snapshots} RETURNING id`,
        [ds.id, now, commit.summary, commit.add.length, removed.length],
      );
      const id = snap.rows[0]!.id;
      if (commit.add.length > 0) {
        const add = commit.add;
        await tx.query(
          `INSERT INTO ${t.files} (path, dataset_id, partition_values, row_count, bytes, min_time, max_time, schema_version, added_in)
           SELECT f.path, $1, f.pv, f.row_count, f.bytes, f.min_time, f.max_time, $2, $3
           FROM unnest($4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
             AS f(path, pv, row_count, bytes, min_time, max_time)`,
          [
            ds.id,
            ds.version,
            id,
            add.map((f) => f.path),
            add.map((f) => JSON.stringify(f.partition)),
            add.map((f) => f.rows),
            add.map((f) => f.bytes),
            add.map((f) => f.minTime),
            add.map((f) => f.maxTime),
          ],
        );
      }
      if (removed.length > 0) {
        const { rows } = await tx.query<{ path: string }>(
          `UPDATE ${t.files} SET removed_in = $1
           WHERE dataset_id = $2 AND removed_in IS NULL AND path = ANY($3::text[]) RETURNING path`,
          [id, ds.id, removed],
        );
        // The first path that was not live (or is named a second time), as SQLite reports it.
        const live = new Set(rows.map((r) => r.path));
        for (const path of removed) {
          if (!live.delete(path)) {
            throw new TributaryError("TRB_CATALOG_CONFLICT", `file ${path} is not live in ${name}`);
          }
        }
      }
      for (const p of commit.positions ?? []) {
        await tx.query(
          `INSERT INTO ${t.positions} (consumer, stream, part, position, snapshot_id) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (consumer, stream, part) DO UPDATE SET position = excluded.position, snapshot_id = excluded.snapshot_id`,
          [p.consumer, p.stream, p.partition, p.to, id],
        );
      }
      // Last: every check above has passed, and a throw here still rolls back the whole commit.
      await this.#writePartitions(tx, commit.partitions ?? []);
      return {
        id,
        committedAt: now,
        dataset: name,
        summary: commit.summary,
        filesAdded: commit.add.length,
        filesRemoved: removed.length,
      };
    });
  }

  async files(ref: DatasetRef, snapshot?: number): Promise<StoredFile[]> {
    const at = snapshot ?? Number.MAX_SAFE_INTEGER;
    const t = this.#t;
    const { rows } = await this.#db.query<FileRow>(
      `SELECT f.path, d.layer || '.' || d.name AS dataset, f.partition_values, f.row_count, f.bytes, f.min_time,
              f.max_time, f.schema_version, f.added_in
       FROM ${t.files} f JOIN ${t.datasets} d ON d.id = f.dataset_id
       WHERE d.layer = $1 AND d.name = $2 AND f.added_in <= $3 AND (f.removed_in IS NULL OR f.removed_in > $3)
       ORDER BY f.added_in, f.path`,
      [ref.layer, ref.name, at],
    );
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
    const { rows } = await this.#db.query<{ path: string }>(
      `SELECT path FROM ${this.#t.files} WHERE removed_in IS NULL`,
    );
    return new Set(rows.map((r) => r.path));
  }

  async registeredPaths(): Promise<Set<string>> {
    const { rows } = await this.#db.query<{ path: string }>(`SELECT path FROM ${this.#t.files}`);
    return new Set(rows.map((r) => r.path));
  }

  async speedCheckpoint(view: string): Promise<SpeedCheckpoint | undefined> {
    const { rows } = await this.#db.query<CheckpointRow>(
      `SELECT view, view_hash, position, max_time, late, state, saved_at FROM ${this.#t.checkpoints} WHERE view = $1`,
      [view],
    );
    const row = rows[0];
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
    await this.#db.query(
      `INSERT INTO ${this.#t.checkpoints} (view, view_hash, position, max_time, late, state, saved_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (view) DO UPDATE SET view_hash = excluded.view_hash, position = excluded.position,
         max_time = excluded.max_time, late = excluded.late, state = excluded.state,
         saved_at = excluded.saved_at`,
      [
        c.view,
        c.viewHash,
        c.position,
        c.maxTime,
        c.late,
        Buffer.from(c.state),
        new Date().toISOString(),
      ],
    );
  }

  async position(consumer: string, stream: string, partition: number): Promise<number> {
    return this.#position(this.#db, consumer, stream, partition);
  }

  async latestSnapshot(): Promise<number> {
    const { rows } = await this.#db.query<{ id: number | null }>(
      `SELECT max(id) AS id FROM ${this.#t.snapshots}`,
    );
    return rows[0]?.id ?? 0;
  }

  async snapshots(limit: number): Promise<SnapshotInfo[]> {
    const t = this.#t;
    const { rows } = await this.#db.query<{
      id: number;
      committed_at: string;
      dataset: string;
      summary: string;
      files_added: number;
      files_removed: number;
    }>(
      `SELECT s.id, s.committed_at, d.layer || '.' || d.name AS dataset, s.summary, s.files_added, s.files_removed
       FROM ${t.snapshots} s JOIN ${t.datasets} d ON d.id = s.dataset_id ORDER BY s.id DESC LIMIT $1`,
      [noLimit(limit)],
    );
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
    // Ordered by code point: the columns are COLLATE "C", SQLite's BINARY order.
    const select = `SELECT model, day, status, model_hash, input_snapshot, built_at, run_id, row_count, reason
      FROM ${this.#t.partitions}`;
    const { rows } =
      model === undefined
        ? await this.#db.query<PartitionRow>(`${select} ORDER BY model, day`)
        : await this.#db.query<PartitionRow>(`${select} WHERE model = $1 ORDER BY model, day`, [
            model,
          ]);
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
    if (states.length === 0) return;
    await this.#db.transaction(async (tx) => {
      // Serialized with commits, which write the same rows: no deadlock between two upserts.
      await tx.lock(WRITE_LOCK);
      await this.#writePartitions(tx, states);
    });
  }

  async startRun(run: { trigger: string; days: readonly string[] }): Promise<number> {
    const { rows } = await this.#db.query<{ id: number }>(
      `INSERT INTO ${this.#t.runs} (trigger, status, started_at, finished_at, days, error)
       VALUES ($1, 'running', $2, NULL, $3, NULL) RETURNING id`,
      [run.trigger, new Date().toISOString(), JSON.stringify(run.days)],
    );
    return rows[0]!.id;
  }

  async finishRun(id: number, status: BatchRunInfo["status"], error?: string): Promise<void> {
    const result = await this.#db.query(
      `UPDATE ${this.#t.runs} SET status = $1, finished_at = $2, error = $3 WHERE id = $4`,
      [status, new Date().toISOString(), error ?? null, id],
    );
    if (result.rowCount !== 1) {
      throw new TributaryError("TRB_CATALOG_CONFLICT", `no batch run ${id} to finish`);
    }
  }

  async recordTask(task: BatchTaskInfo): Promise<void> {
    await this.#db.query(
      `INSERT INTO ${this.#t.tasks} (run_id, model, days, status, attempts, started_at, ms, rows_in, rows_out, error)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [
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
      ],
    );
  }

  async recordTests(results: readonly TestResultInfo[]): Promise<void> {
    if (results.length === 0) return;
    await this.#db.transaction(async (tx) => {
      // One insert each, in order: the identity then numbers them in the order they were given.
      for (const r of results) {
        await tx.query(
          `INSERT INTO ${this.#t.testResults} (run_id, model, day, test, passed, failures, message)
           VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [r.runId, r.model, r.day, r.test, r.passed ? 1 : 0, r.failures, r.message],
        );
      }
    });
  }

  async runs(limit: number): Promise<BatchRunInfo[]> {
    const { rows } = await this.#db.query<RunRow>(
      `${this.#runSelect()} ORDER BY id DESC LIMIT $1`,
      [noLimit(limit)],
    );
    return rows.map(toRun);
  }

  async run(id: number): Promise<BatchRunInfo | undefined> {
    const { rows } = await this.#db.query<RunRow>(`${this.#runSelect()} WHERE id = $1`, [id]);
    return rows[0] ? toRun(rows[0]) : undefined;
  }

  async tasks(runId: number): Promise<BatchTaskInfo[]> {
    const { rows } = await this.#db.query<TaskRow>(
      `SELECT run_id, model, days, status, attempts, started_at, ms, rows_in, rows_out, error
       FROM ${this.#t.tasks} WHERE run_id = $1 ORDER BY id`,
      [runId],
    );
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
    const where: string[] = [];
    const params: (number | string)[] = [];
    if (filter.runId !== undefined) {
      params.push(filter.runId);
      where.push(`run_id = $${params.length}`);
    }
    if (filter.model !== undefined) {
      params.push(filter.model);
      where.push(`model = $${params.length}`);
    }
    const { rows } = await this.#db.query<TestResultRow>(
      `SELECT run_id, model, day, test, passed, failures, message FROM ${this.#t.testResults}
       ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id`,
      params,
    );
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
    await this.#db.close();
  }

  /** The stored position of a consumer, 0 when none. */
  async #position(
    q: PgQueryable,
    consumer: string,
    stream: string,
    partition: number,
  ): Promise<number> {
    const { rows } = await q.query<{ position: number }>(
      `SELECT position FROM ${this.#t.positions} WHERE consumer = $1 AND stream = $2 AND part = $3`,
      [consumer, stream, partition],
    );
    return rows[0]?.position ?? 0;
  }

  /**
   * Upserts partition states in one statement; the caller holds the transaction and the write
   * lock. Of two states of one partition the last wins, as when SQLite writes them one by one
   * (one statement may not update a row twice, so the earlier is dropped first).
   */
  async #writePartitions(tx: PgTransaction, states: readonly PartitionState[]): Promise<void> {
    if (states.length === 0) return;
    const last = new Map<string, PartitionState>();
    for (const p of states) last.set(JSON.stringify([p.model, p.day]), p);
    const rows = [...last.values()];
    await tx.query(
      `INSERT INTO ${this.#t.partitions} (model, day, status, model_hash, input_snapshot, built_at, run_id, row_count, reason)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
         $7::bigint[], $8::bigint[], $9::text[])
       ON CONFLICT (model, day) DO UPDATE SET status = excluded.status, model_hash = excluded.model_hash,
         input_snapshot = excluded.input_snapshot, built_at = excluded.built_at, run_id = excluded.run_id,
         row_count = excluded.row_count, reason = excluded.reason`,
      [
        rows.map((p) => p.model),
        rows.map((p) => p.day),
        rows.map((p) => p.status),
        rows.map((p) => p.modelHash),
        rows.map((p) => p.inputSnapshot),
        rows.map((p) => p.builtAt),
        rows.map((p) => p.runId),
        rows.map((p) => p.rows),
        rows.map((p) => p.reason),
      ],
    );
  }

  #datasetSelect(): string {
    const t = this.#t;
    return `
SELECT d.id, d.layer, d.name, d.kind, d.description, d.partition_columns, d.created_at, v.version, v.columns
FROM ${t.datasets} d JOIN ${t.schemaVersions} v ON v.dataset_id = d.id
  AND v.version = (SELECT max(version) FROM ${t.schemaVersions} WHERE dataset_id = d.id)`;
  }

  #runSelect(): string {
    return `SELECT id, trigger, status, started_at, finished_at, days, error FROM ${this.#t.runs}`;
  }
}

/** SQLite reads a negative LIMIT as none; PostgreSQL rejects it and reads NULL as none. */
function noLimit(limit: number): number | null {
  return limit < 0 ? null : limit;
}
