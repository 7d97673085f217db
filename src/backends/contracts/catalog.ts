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

/** One version of a dataset's schema: a new one is added whenever its column list changes. */
export interface SchemaVersionInfo {
  readonly version: number;
  readonly columns: readonly SchemaColumn[];
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

/** Status of one partition of a batch model. */
export type PartitionStatus = "fresh" | "stale" | "failed";

/**
 * The state of one partition of a batch model: one day of a partitioned model, or the whole
 * table (day `*`) of a full-refresh model.
 */
export interface PartitionState {
  /** Model id, `layer.name`. */
  readonly model: string;
  /** `YYYY-MM-DD`, or `*` for a full-refresh model. */
  readonly day: string;
  readonly status: PartitionStatus;
  /** Hash of the model definition the files were built with (a change makes them outdated). */
  readonly modelHash: string | null;
  /** The catalog snapshot the inputs were read at when the partition was last built. */
  readonly inputSnapshot: number | null;
  /** When the live files were built (ISO-8601), null if never. */
  readonly builtAt: string | null;
  /** The run that last built or tried to build it. */
  readonly runId: number | null;
  /** Rows of the live files. */
  readonly rows: number | null;
  /** Why it is failed or stale. */
  readonly reason: string | null;
}

/** One atomic change to the catalog. */
export interface Commit {
  readonly dataset: DatasetRef;
  readonly add: readonly FileEntry[];
  /** Paths of live files this commit replaces (compaction, partition rebuilds). */
  readonly remove?: readonly string[];
  readonly positions?: readonly PositionUpdate[];
  /** Partition states written in the same transaction (a batch build marks its days fresh). */
  readonly partitions?: readonly PartitionState[];
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

/** A batch run: one invocation of the batch layer (scheduled, manual, backfill, repair). */
export interface BatchRunInfo {
  readonly id: number;
  readonly trigger: string;
  readonly status: "running" | "succeeded" | "failed" | "interrupted";
  readonly startedAt: string;
  readonly finishedAt: string | null;
  /** Days the run was asked to build (`*` stands for full-refresh models). */
  readonly days: readonly string[];
  readonly error: string | null;
}

/** One task of a run: a model over one or more days, with its figures. */
export interface BatchTaskInfo {
  readonly runId: number;
  readonly model: string;
  /** Days built by the task, ascending (`*` for a full-refresh model). */
  readonly days: readonly string[];
  readonly status: "succeeded" | "failed" | "blocked" | "skipped";
  readonly attempts: number;
  readonly startedAt: string | null;
  readonly ms: number | null;
  readonly rowsIn: number | null;
  readonly rowsOut: number | null;
  readonly error: string | null;
}

/** The outcome of one data test on one partition. */
export interface TestResultInfo {
  readonly runId: number;
  readonly model: string;
  readonly day: string;
  /** Readable name, e.g. `not_null(origin)`. */
  readonly test: string;
  readonly passed: boolean;
  /** Rows that break the test (0 when passed). */
  readonly failures: number;
  readonly message: string | null;
}

/**
 * Records of the batch layer kept by the catalog: partition states, runs, tasks, test results.
 * Writes are durable when the promise resolves; `recordTask` and `recordTests` append.
 * A catalog opened read-only works for every read, and one written before the batch layer existed
 * reads as having no records.
 */
export interface BatchRecords {
  /** Partition states of one model, or of all; ordered by model, then day (code-point order). */
  partitions(model?: string): Promise<PartitionState[]>;
  /**
   * Upserts partition states outside a file commit (marking stale or failed), all in one
   * transaction. A state replaces the stored one of its model and day whole: fields are stored as
   * given, never merged, so marking a partition stale must pass its `builtAt`, `inputSnapshot`, …
   * on. Of two states of the same partition in one call, the last wins.
   */
  setPartitions(states: readonly PartitionState[]): Promise<void>;
  /** Records a run as `running`, started now; returns its id, greater than every earlier run's. */
  startRun(run: { trigger: string; days: readonly string[] }): Promise<number>;
  /**
   * Sets a run's status, `finishedAt` (now) and error (null when not given). Throws
   * TRB_CATALOG_CONFLICT when there is no run with that id.
   */
  finishRun(id: number, status: BatchRunInfo["status"], error?: string): Promise<void>;
  recordTask(task: BatchTaskInfo): Promise<void>;
  /** Appends the results, all or none. */
  recordTests(results: readonly TestResultInfo[]): Promise<void>;
  /** The latest `limit` runs, newest first. */
  runs(limit: number): Promise<BatchRunInfo[]>;
  run(id: number): Promise<BatchRunInfo | undefined>;
  /** The tasks of a run in the order they were recorded. */
  tasks(runId: number): Promise<BatchTaskInfo[]>;
  /** Results matching every given filter field, in the order they were recorded. */
  testResults(filter: { runId?: number; model?: string }): Promise<TestResultInfo[]>;
}

/**
 * The speed layer's checkpoint of one view: its window states and the stream position they cover,
 * written together so a restart resumes exactly once.
 */
export interface SpeedCheckpoint {
  readonly view: string;
  /** Hash of the view definition the states belong to. */
  readonly viewHash: string;
  /** Next stream position to read: every record before it is in `state` (or counted late). */
  readonly position: number;
  /** Newest event time seen (epoch ms), from which the watermark follows. */
  readonly maxTime: number | null;
  /** Events that arrived later than the allowed lateness, so far. */
  readonly late: number;
  /** The serialized window states. */
  readonly state: Uint8Array;
  readonly savedAt: string;
}

/**
 * The catalog: the commit point of the lake.
 *
 * - `commit` is atomic: files become visible, replaced files invisible, and stream positions move,
 *   all together or not at all. It throws TRB_CATALOG_CONFLICT (and changes nothing) when a
 *   position's stored value is not `from`, so two committers never register the same range.
 * - Snapshot ids increase with every commit; `files(…, snapshot)` gives the state as of it.
 * - `ensureDataset` is idempotent; a changed column list adds a schema version.
 * - `commit` also upserts the commit's `partitions` states (as `setPartitions` does), in the same
 *   transaction: a commit that fails leaves them unchanged.
 */
export interface CatalogStore extends BatchRecords {
  ensureDataset(ref: DatasetRef, def: DatasetDefinition): Promise<DatasetInfo>;
  datasets(): Promise<DatasetInfo[]>;
  dataset(ref: DatasetRef): Promise<DatasetInfo | undefined>;
  /** Every schema version of a dataset, oldest first (empty for an unknown dataset). */
  schemaVersions(ref: DatasetRef): Promise<SchemaVersionInfo[]>;
  commit(commit: Commit): Promise<SnapshotInfo>;
  /** Live files of a dataset at a snapshot (default: the latest). */
  files(ref: DatasetRef, snapshot?: number): Promise<StoredFile[]>;
  /** Every live path of every dataset. */
  livePaths(): Promise<Set<string>>;
  /**
   * Every path any commit registered, live or since replaced. Replaced files stay in the lake for
   * time travel; a file under a dataset's prefix that is not here is an orphan (a crash between
   * putting it and committing it) and may be deleted.
   */
  registeredPaths(): Promise<Set<string>>;
  /** The last checkpoint of a view's speed layer, if any. */
  speedCheckpoint(view: string): Promise<SpeedCheckpoint | undefined>;
  /** Replaces a view's speed checkpoint; durable when it resolves. */
  saveSpeedCheckpoint(checkpoint: Omit<SpeedCheckpoint, "savedAt">): Promise<void>;
  /** The stored position of a consumer (0 when none). */
  position(consumer: string, stream: string, partition: number): Promise<number>;
  latestSnapshot(): Promise<number>;
  snapshots(limit: number): Promise<SnapshotInfo[]>;
  close(): Promise<void>;
}
