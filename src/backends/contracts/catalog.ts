// The Catalog contract: datasets, schema versions, files, snapshots and stream positions, committed atomically.

/** A dataset's identity: `layer.name`, e.g. raw.flights or dlq.flights. */
export interface DatasetRef {
  readonly layer: string;
  readonly name: string;
}

/** A column of a dataset schema, as stored in the catalog. */
export interface SchemaColumn {
  readonly name: string;
  /** DuckDB SQL type, e.g. VARCHAR, BIGINT, TIMESTAMP, JSON. */
  readonly type: string;
  readonly description?: string;
}

/** What `ensureDataset` registers: kind, description and the current schema. */
export interface DatasetDefinition {
  readonly kind: string;
  readonly description?: string;
  readonly columns: readonly SchemaColumn[];
  readonly partitionColumns: readonly string[];
}

/** A dataset and its current schema. */
export interface DatasetInfo extends DatasetRef {
  readonly id: number;
  readonly kind: string;
  readonly description: string | null;
  readonly schemaVersion: number;
  readonly columns: readonly SchemaColumn[];
  /** Names of Hive partition columns, in path order (e.g. dt, hour). */
  readonly partitionColumns: readonly string[];
  readonly createdAt: string;
}

/** A data file registered in the catalog. */
export interface FileEntry {
  /** Key of the object in the lake, relative to the lake root (e.g. raw/flights/dt=.../x.parquet). */
  readonly path: string;
  /** Partition values as written in the path, e.g. { dt: "2001-01-01", hour: "00" }. */
  readonly partition: Readonly<Record<string, string>>;
  readonly rows: number;
  readonly bytes: number;
  /** Event-time range in the file, epoch ms (null when the dataset has no event time). */
  readonly minTime: number | null;
  readonly maxTime: number | null;
}

/** A live file with its dataset and the snapshot that added it. */
export interface StoredFile extends FileEntry {
  readonly dataset: string;
  readonly addedIn: number;
  readonly schemaVersion: number;
}

/** A stream position a commit moves from `from` to `to` (exclusive positions). */
export interface PositionUpdate {
  readonly consumer: string;
  readonly stream: string;
  readonly partition: number;
  /** The position the committer started from; the commit fails if the stored one differs. */
  readonly from: number;
  readonly to: number;
}

/** One atomic change to the catalog. */
export interface Commit {
  readonly dataset: DatasetRef;
  readonly add: readonly FileEntry[];
  /** Paths of live files this commit replaces (compaction, partition rebuilds). */
  readonly remove?: readonly string[];
  readonly positions?: readonly PositionUpdate[];
  /** Short description, kept with the snapshot (e.g. "land 1200 events"). */
  readonly summary: string;
}

/** A committed snapshot. */
export interface SnapshotInfo {
  readonly id: number;
  readonly committedAt: string;
  readonly dataset: string;
  readonly summary: string;
  readonly filesAdded: number;
  readonly filesRemoved: number;
}

/**
 * The catalog: the commit point of the lake.
 *
 * - `commit` is atomic: files become visible, replaced files invisible, and stream positions move,
 *   all together or not at all. It throws TRB_CATALOG_CONFLICT (and changes nothing) when a
 *   position's stored value is not `from`, so two committers never register the same range.
 * - Snapshot ids increase with every commit; `files(…, snapshot)` gives the state as of it.
 * - `ensureDataset` is idempotent; a changed column list adds a schema version.
 */
export interface CatalogStore {
  ensureDataset(ref: DatasetRef, def: DatasetDefinition): Promise<DatasetInfo>;
  datasets(): Promise<DatasetInfo[]>;
  dataset(ref: DatasetRef): Promise<DatasetInfo | undefined>;
  commit(commit: Commit): Promise<SnapshotInfo>;
  /** Live files of a dataset at a snapshot (default: the latest). */
  files(ref: DatasetRef, snapshot?: number): Promise<StoredFile[]>;
  /** Every live path of every dataset (used to find orphans). */
  livePaths(): Promise<Set<string>>;
  /** The stored position of a consumer (0 when none). */
  position(consumer: string, stream: string, partition: number): Promise<number>;
  latestSnapshot(): Promise<number>;
  snapshots(limit: number): Promise<SnapshotInfo[]>;
  close(): Promise<void>;
}
