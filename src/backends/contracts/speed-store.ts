// The SpeedStore contract: per-shard speed-layer checkpoints, written with compare-and-set on the position they cover.

/**
 * What a speed worker writes for its shard of a view: the serialized window states and the stream
 * position they cover, stored together so that a restart resumes exactly once.
 */
export interface ShardCheckpoint {
  /** Hash of the view definition the states belong to. */
  readonly viewHash: string;
  /**
   * Next position of the shard's input to read: every record before it is in `state` (or counted
   * late). A non-negative safe integer.
   */
  readonly position: number;
  /** Newest event time seen (epoch ms, a safe integer), from which the watermark follows. */
  readonly maxTime: number | null;
  /** Events that arrived later than the allowed lateness, so far (a non-negative safe integer). */
  readonly late: number;
  /** The serialized window states: opaque bytes, returned exactly as saved (empty is allowed). */
  readonly state: Uint8Array;
}

/** A checkpoint as stored. */
export interface StoredShardCheckpoint extends ShardCheckpoint {
  readonly shard: string;
  /** When the save landed: ISO-8601 UTC, from the clock of the process that saved it. */
  readonly savedAt: string;
}

/** Optional powers of a SpeedStore backend. */
export interface SpeedStoreCapabilities {
  /**
   * True when every instance opened on the same storage (other processes included) sees the same
   * checkpoints, so speed workers in many processes can share a view and serve can read them.
   * False for a store that lives in one instance's memory.
   */
  readonly shared: boolean;
}

/**
 * The speed layer's checkpoints, one per (view, shard). A shard is one speed worker's share of a
 * view's input (a stream partition, or a worker id); each shard's states are partial aggregates,
 * and serve merges the shards of a view (the measures are mergeable by design). The store never
 * decodes a state: the speed layer and serve (de)serialize them.
 *
 * - `save(view, shard, expected, checkpoint)` replaces the shard's checkpoint, atomically, only if
 *   the stored position equals `expected` (`null`: nothing stored). Otherwise it throws
 *   TributaryError TRB_CATALOG_CONFLICT and changes nothing. This compare-and-set is the fencing:
 *   a worker passes the position of the checkpoint its states were built on, so a zombie (a stale
 *   process still running after a restart took its shard over and saved) cannot overwrite the
 *   newer checkpoint; on a conflict a worker drops its states and resumes from `loadShard`. Since
 *   states and position are written together, every event before `position` is in the stored
 *   state exactly once. Of concurrent saves with the same `expected` that move the position,
 *   exactly one lands. (A save that keeps the position, `position === expected`, is not fenced
 *   against another such save: two checkpoints of one shard at one position cover the same events,
 *   so building on either is correct.)
 * - `save` is idempotent: when the stored checkpoint already equals the given one (position,
 *   viewHash, maxTime, late and state bytes), it resolves without change whatever `expected` is, so
 *   a save resent after a lost reply does not report its own write as a conflict. Any other
 *   rejection (a lost connection) may or may not have landed; `loadShard` tells.
 * - A save resolves only when durable: committed (PostgreSQL), applied and as durable as the
 *   server's persistence makes it (Redis: AOF with `appendfsync always` or `everysec`), or in
 *   memory only (the in-process store).
 * - `load` returns every shard's checkpoint of a view, ordered by shard (JavaScript string order),
 *   each as one save wrote it (never a mix of two saves).
 * - `version(view)` is a counter cheap to poll: 0 for a view never saved; it increases with every
 *   save that changed something and every `remove` that removed something, and never goes back
 *   (not even across a `remove` of the whole view). A failed or idempotent save leaves it as is.
 *   Serve reloads a view only when its version moved.
 * - `remove(view, shard?)` deletes one shard's checkpoint, or all of a view's (a view dropped or
 *   redefined, or a shard retired); removing nothing is not an error. A removed shard starts over
 *   with `expected` null.
 * - `view`, `shard` and `viewHash` are well-formed text (no lone UTF-16 surrogate) without NUL, and
 *   names are not empty: what every backend stores as UTF-8 text. A bad name or number (a position
 *   that is not a non-negative safe integer, say) is a RangeError, and nothing is written.
 *
 * @example
 * const mine = await store.loadShard("daily_revenue", "p3");
 * // ...restore mine?.state, read the stream from mine?.position ?? 1, fold events, then:
 * await store.save("daily_revenue", "p3", mine?.position ?? null, { viewHash, position, maxTime, late, state });
 */
export interface SpeedStore {
  readonly capabilities: SpeedStoreCapabilities;
  /** Replaces a shard's checkpoint if its stored position is `expected`; see the contract above. */
  save(
    view: string,
    shard: string,
    expected: number | null,
    checkpoint: ShardCheckpoint,
  ): Promise<void>;
  /** Every shard's checkpoint of a view, ordered by shard; empty when none. */
  load(view: string): Promise<StoredShardCheckpoint[]>;
  /** One shard's checkpoint (a restarting worker's), if any. */
  loadShard(view: string, shard: string): Promise<StoredShardCheckpoint | undefined>;
  /** Deletes one shard's checkpoint, or every shard's of the view when `shard` is omitted. */
  remove(view: string, shard?: string): Promise<void>;
  /** The view's change counter; see the contract above. */
  version(view: string): Promise<number>;
  /** Releases connections; the instance is not used afterwards. */
  close(): Promise<void>;
}
