// The embedded Catalog: datasets, schema versions, files, snapshots and stream positions in one SQLite file.
import { TributaryError } from "../../errors.js";
import type {
  CatalogStore,
  Commit,
  DatasetDefinition,
  DatasetInfo,
  DatasetRef,
  SchemaColumn,
  SnapshotInfo,
  StoredFile,
} from "../contracts/index.js";
import { openSqlite, type SqliteDatabase } from "./connection.js";

/** Catalog tables; kept portable so the PostgreSQL catalog can share the same definition. */
export const CATALOG_DDL = `
CREATE TABLE IF NOT EXISTS datasets (
  id INTEGER PRIMARY KEY, layer TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
  description TEXT, partition_columns TEXT NOT NULL, created_at TEXT NOT NULL,
  UNIQUE (layer, name));
CREATE TABLE IF NOT EXISTS schema_versions (
  dataset_id INTEGER NOT NULL, version INTEGER NOT NULL, columns TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (dataset_id, version));
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT, dataset_id INTEGER NOT NULL, committed_at TEXT NOT NULL,
  summary TEXT NOT NULL, files_added INTEGER NOT NULL, files_removed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS files (
  path TEXT PRIMARY KEY, dataset_id INTEGER NOT NULL, partition_values TEXT NOT NULL,
  row_count INTEGER NOT NULL, bytes INTEGER NOT NULL, min_time INTEGER, max_time INTEGER,
  schema_version INTEGER NOT NULL, added_in INTEGER NOT NULL, removed_in INTEGER);
CREATE INDEX IF NOT EXISTS files_by_dataset ON files (dataset_id, removed_in);
CREATE TABLE IF NOT EXISTS positions (
  consumer TEXT NOT NULL, stream TEXT NOT NULL, part INTEGER NOT NULL, position INTEGER NOT NULL,
  snapshot_id INTEGER NOT NULL, PRIMARY KEY (consumer, stream, part));
`;

interface DatasetRow {
  id: number;
  layer: string;
  name: string;
  kind: string;
  description: string | null;
  partition_columns: string;
  created_at: string;
  version: number;
  columns: string;
}

interface FileRow {
  path: string;
  dataset: string;
  partition_values: string;
  row_count: number;
  bytes: number;
  min_time: number | null;
  max_time: number | null;
  schema_version: number;
  added_in: number;
}

/**
 * CatalogStore on SQLite (WAL, synchronous FULL): a commit is one SQLite transaction, durable
 * when it returns. Readers in other processes (the CLI) may open the same file read-only.
 */
export class SqliteCatalog implements CatalogStore {
  readonly #db: SqliteDatabase;

  constructor(path: string, options: { readonly?: boolean } = {}) {
    this.#db = openSqlite(path, options);
    if (!options.readonly) this.#db.exec(CATALOG_DDL);
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

  async close(): Promise<void> {
    this.#db.close();
  }
}

const DATASET_SELECT = `
SELECT d.id, d.layer, d.name, d.kind, d.description, d.partition_columns, d.created_at, v.version, v.columns
FROM datasets d JOIN schema_versions v ON v.dataset_id = d.id
  AND v.version = (SELECT max(version) FROM schema_versions WHERE dataset_id = d.id)`;

function toDataset(r: DatasetRow): DatasetInfo {
  return {
    id: r.id,
    layer: r.layer,
    name: r.name,
    kind: r.kind,
    description: r.description,
    schemaVersion: r.version,
    columns: JSON.parse(r.columns) as SchemaColumn[],
    partitionColumns: JSON.parse(r.partition_columns) as string[],
    createdAt: r.created_at,
  };
}
