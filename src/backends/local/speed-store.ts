// An in-process SpeedStore: per-shard speed checkpoints in a Map, for tests and single-process use.
import { TributaryError } from "../../errors.js";
import type {
  ShardCheckpoint,
  SpeedStore,
  SpeedStoreCapabilities,
  StoredShardCheckpoint,
} from "../contracts/index.js";
import { checkName, checkSave } from "../contracts/speed-store-checks.js";

/**
 * SpeedStore in this instance's memory: atomic (every call runs to completion on the event loop
 * before another starts) and fenced like the distributed stores, but not durable, and invisible to
 * other instances (`capabilities.shared` is false). For tests and for single-process runs that
 * need the sharded interface; the embedded mode's durable speed checkpoint remains the catalog's
 * (`CatalogStore.saveSpeedCheckpoint`), which survives a restart.
 * @example
 * const store = new MemorySpeedStore();
 * await store.save("daily_revenue", "p0", null, { viewHash, position: 42, maxTime, late: 0, state });
 */
export class MemorySpeedStore implements SpeedStore {
  readonly capabilities: SpeedStoreCapabilities = { shared: false };
  readonly #views = new Map<string, Map<string, StoredShardCheckpoint>>();
  readonly #versions = new Map<string, number>();

  async save(
    view: string,
    shard: string,
    expected: number | null,
    checkpoint: ShardCheckpoint,
  ): Promise<void> {
    checkSave(view, shard, expected, checkpoint);
    const shards = this.#views.get(view);
    const stored = shards?.get(shard);
    if (stored && sameCheckpoint(stored, checkpoint)) return;
    if ((stored?.position ?? null) !== expected) {
      throw conflict(view, shard, expected, stored?.position ?? null);
    }
    const copy: StoredShardCheckpoint = {
      shard,
      viewHash: checkpoint.viewHash,
      position: checkpoint.position,
      maxTime: checkpoint.maxTime,
      late: checkpoint.late,
      state: Uint8Array.from(checkpoint.state),
      savedAt: new Date().toISOString(),
    };
    if (shards) shards.set(shard, copy);
    else this.#views.set(view, new Map([[shard, copy]]));
    this.#bump(view);
  }

  async load(view: string): Promise<StoredShardCheckpoint[]> {
    checkName("view", view);
    const shards = [...(this.#views.get(view)?.values() ?? [])];
    return shards.sort((a, b) => (a.shard < b.shard ? -1 : a.shard > b.shard ? 1 : 0)).map(copyOf);
  }

  async loadShard(view: string, shard: string): Promise<StoredShardCheckpoint | undefined> {
    checkName("view", view);
    checkName("shard", shard);
    const stored = this.#views.get(view)?.get(shard);
    return stored && copyOf(stored);
  }

  async remove(view: string, shard?: string): Promise<void> {
    checkName("view", view);
    if (shard !== undefined) checkName("shard", shard);
    const shards = this.#views.get(view);
    if (!shards) return;
    if (shard === undefined) {
      this.#views.delete(view);
    } else {
      if (!shards.delete(shard)) return;
      if (shards.size === 0) this.#views.delete(view);
    }
    this.#bump(view);
  }

  async version(view: string): Promise<number> {
    checkName("view", view);
    return this.#versions.get(view) ?? 0;
  }

  async close(): Promise<void> {}

  /** Kept across `remove`, so a poller never sees an old number again. */
  #bump(view: string): void {
    this.#versions.set(view, (this.#versions.get(view) ?? 0) + 1);
  }
}

function copyOf(c: StoredShardCheckpoint): StoredShardCheckpoint {
  return { ...c, state: Uint8Array.from(c.state) };
}

function sameCheckpoint(a: ShardCheckpoint, b: ShardCheckpoint): boolean {
  return (
    a.position === b.position &&
    a.viewHash === b.viewHash &&
    a.maxTime === b.maxTime &&
    a.late === b.late &&
    Buffer.from(a.state.buffer, a.state.byteOffset, a.state.byteLength).equals(
      Buffer.from(b.state.buffer, b.state.byteOffset, b.state.byteLength),
    )
  );
}

function conflict(
  view: string,
  shard: string,
  expected: number | null,
  stored: number | null,
): TributaryError {
  return new TributaryError(
    "TRB_CATALOG_CONFLICT",
    `speed checkpoint of ${view}/${shard} is at ${stored ?? "none"}, not ${expected ?? "none"}: another worker saved it; reload it with loadShard`,
  );
}
