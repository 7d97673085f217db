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
  /**
   * Position in the log: strictly increasing per stream, starting at 1, one order over all
   * partitions (a partition's records have increasing positions with gaps between them).
   */
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
  /**
   * Reads only this partition (an integer `0 <= partition < capabilities.partitions`; anything
   * else is a RangeError and nothing is read): its records with `seq >= from`, in order, at their
   * stream positions. A long poll then waits for an append to this partition. Default: every
   * partition.
   */
  readonly partition?: number;
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
  /**
   * Number of partitions of a stream in this backend (1 for the embedded log), numbered
   * `0 .. partitions - 1`; a record's partition is `partitionOf(id, partitions)`.
   */
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
 * - Partitions split a stream so several processes can each consume a share of it. A record's
 *   partition is `partitionOf(id, capabilities.partitions)` in every backend, so a retry goes to
 *   the same partition as the first try. Positions stay the stream's own: one order over all
 *   partitions, so a partition's positions increase with gaps where other partitions' records
 *   sit. `read`/`readBatches` with `options.partition` return that partition's records only, and
 *   `end(stream, partition)` is the end of that partition.
 * - `commit` records how far a consumer has durably processed a stream (exclusive position); it
 *   only drives retention: the source of truth for exactly-once is the catalog, which stores
 *   positions with the files they produced (per consumer, stream and partition).
 * - Records older than `retainMs` that every registered consumer has passed may be deleted.
 * - `register`, `commit` and `trim` are per stream, not per partition: retention waits for the
 *   lowest committed position of the registered consumers. A consumer that reads by partition
 *   commits the lowest of its positions over all the stream's partitions (every process sharing
 *   the consumer name included: a commit never moves a consumer back), so nothing a partition
 *   still needs is deleted.
 */
export interface Stream {
  readonly capabilities: StreamCapabilities;
  /** Opens (creating if needed) a stream. Idempotent. */
  open(settings: StreamSettings): Promise<void>;
  /** Appends records durably; see the contract above. Throws TRB_STREAM_CLOSED after close. */
  append(stream: string, records: readonly StreamRecord[]): Promise<AppendResult[]>;
  /**
   * Reads records from position `from` (inclusive), of every partition or of `options.partition`.
   * RangeError for a partition that is not an integer `0 <= p < capabilities.partitions`.
   */
  read(stream: string, from: number, options: ReadOptions): Promise<StoredRecord[]>;
  /**
   * Reads the same records as `read` (`options.partition` included), as blocks of records at
   * consecutive positions; the first block starts at the first record at or after `from`, and
   * blocks stop once `max` records are reached (the last block may pass it).
   */
  readBatches(stream: string, from: number, options: ReadOptions): Promise<RecordBatch[]>;
  /**
   * Without `partition`: the position the next append will take (one past the last stored record;
   * trim never moves it back). With `partition`: one past the position of that partition's last
   * stored record, 1 when it has none (it may go back to 1 once trim deleted all of them), so a
   * consumer of the partition that processed everything has a position >= it. RangeError for a
   * partition that is not an integer `0 <= p < capabilities.partitions`.
   */
  end(stream: string, partition?: number): Promise<number>;
  /**
   * Registers a consumer of the whole stream (every partition) so retention waits for it.
   * Idempotent.
   */
  register(stream: string, consumer: string): Promise<void>;
  /**
   * Records that `consumer` processed everything before `position`, in every partition (a
   * partitioned consumer passes the lowest of its partitions' positions); never moves it back.
   */
  commit(stream: string, consumer: string, position: number): Promise<void>;
  /** Deletes what retention allows; returns the number of records deleted. */
  trim(stream: string, now?: number): Promise<number>;
  /** Stops accepting appends, waits for pending ones, releases resources. */
  close(): Promise<void>;
}

/**
 * The partition of a record with this id among `partitions` (an integer >= 1, else RangeError):
 * 32-bit FNV-1a over the id's UTF-16 code units, modulo `partitions`. Every backend places records
 * by it, so a retry of a record goes to the same partition.
 * @example partitionOf("F1", 3) // an integer 0 to 2, the same on every call
 */
export function partitionOf(id: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`partitions must be an integer >= 1, not ${partitions}`);
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % partitions;
}

/**
 * Checks a partition argument of `read`, `readBatches` or `end` for a backend with `partitions`
 * partitions: undefined (every partition) or an integer `0 <= partition < partitions`, else a
 * RangeError. Shared by the implementations, which call it before reading anything.
 */
export function checkPartition(partition: number | undefined, partitions: number): void {
  if (partition === undefined) return;
  if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
    throw new RangeError(
      `partition must be an integer 0 to ${partitions - 1}, not ${String(partition)}`,
    );
  }
}
