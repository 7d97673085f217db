// The Stream contract: a durable, ordered, replayable log of accepted events, one per stream name.

/** An event as appended: id for deduplication, event time for partitioning, the normalized record. */
export interface StreamRecord {
  /** Event id; a second append of the same id within the dedup window is not stored again. */
  readonly id: string;
  /** Event time, epoch milliseconds (UTC). */
  readonly time: number;
  /** The normalized record: one JSON object on one line (no raw line feed, as JSON.stringify writes it), UTF-8 text. */
  readonly data: string;
}

/** A record read back, with its position. */
export interface StoredRecord extends StreamRecord {
  /** Position in the log: strictly increasing per stream (and partition), starting at 1. */
  readonly seq: number;
}

/** The result of appending one record. */
export interface AppendResult {
  /** Position of the stored copy (the earlier one for a duplicate). */
  readonly seq: number;
  /** True when the id was already stored within the dedup window: nothing new was stored. */
  readonly duplicate: boolean;
}

/** Options of a read. */
export interface ReadOptions {
  /** Most records to return. */
  readonly max: number;
  /** When nothing is available, wait up to this long for an append (long poll). Default 0. */
  readonly waitMs?: number;
  /** Aborts a waiting read; it then resolves with what it has (possibly nothing). */
  readonly signal?: AbortSignal;
}

/** Per-stream settings a backend needs when a stream is opened. */
export interface StreamSettings {
  readonly name: string;
  /** How long ids are remembered for deduplication. */
  readonly dedupWindowMs: number;
  /** Most ids remembered; the window shrinks when more arrive. */
  readonly dedupMaxIds: number;
  /** How long records are kept after every registered consumer passed them. */
  readonly retainMs: number;
}

/** Consecutive records read as one block: positions `first .. first + count - 1`. */
export interface RecordBatch {
  readonly first: number;
  readonly count: number;
  /** Event time of each record, epoch ms. */
  readonly times: readonly number[];
  /** The records' data joined by "\n" (records are single-line JSON). */
  readonly data: string;
}

/** Optional powers of a Stream backend. */
export interface StreamCapabilities {
  /** Number of partitions of a stream in this backend (1 for the embedded log). */
  readonly partitions: number;
  /**
   * True when `readBatches` returns stored blocks without splitting them into records: consumers
   * that write records out as NDJSON (land) then avoid per-record work.
   */
  readonly batches: boolean;
}

/**
 * A durable, ordered log per stream.
 *
 * - `append` resolves only when every record is durable (fsync'd locally, or acknowledged by the
 *   replicated store); if it rejects, none, some or all records may be stored, and a retry with the
 *   same ids is deduplicated within the window. Records of one call keep their order.
 * - `read` returns records with `seq >= from` in order. Reading never removes anything.
 * - `commit` records how far a consumer has durably processed a stream (exclusive position); it
 *   only drives retention: the source of truth for exactly-once is the catalog, which stores
 *   positions with the files they produced.
 * - Records older than `retainMs` that every registered consumer has passed may be deleted.
 */
export interface Stream {
  readonly capabilities: StreamCapabilities;
  /** Opens (creating if needed) a stream. Idempotent. */
  open(settings: StreamSettings): Promise<void>;
  /** Appends records durably; see the contract above. Throws TRB_STREAM_CLOSED after close. */
  append(stream: string, records: readonly StreamRecord[]): Promise<AppendResult[]>;
  /** Reads records from position `from` (inclusive). */
  read(stream: string, from: number, options: ReadOptions): Promise<StoredRecord[]>;
  /**
   * Reads the same records as `read`, as blocks of consecutive records; the first block starts at
   * `from`, and blocks stop once `max` records are reached (the last block may pass it).
   */
  readBatches(stream: string, from: number, options: ReadOptions): Promise<RecordBatch[]>;
  /** Position the next append will take (one past the last stored record). */
  end(stream: string): Promise<number>;
  /** Registers a consumer so retention waits for it. Idempotent. */
  register(stream: string, consumer: string): Promise<void>;
  /** Records that `consumer` processed everything before `position`. */
  commit(stream: string, consumer: string, position: number): Promise<void>;
  /** Deletes what retention allows; returns the number of records deleted. */
  trim(stream: string, now?: number): Promise<number>;
  /** Stops accepting appends, waits for pending ones, releases resources. */
  close(): Promise<void>;
}
