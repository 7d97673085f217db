// The speed layer's states as another process sees them: its last checkpoint in the catalog.
import type { CatalogStore, SpeedStore } from "../backends/contracts/index.js";
import { ViewAggregator, type ViewNode } from "../views/index.js";

/**
 * Reads a view's speed states from the catalog for a serve process that does not run the speed
 * layer (`tributary run serve`): the speed role checkpoints its window states with the stream
 * position they cover (at most `checkpoint` apart, 1 s by default), so serve lags the speed
 * layer by at most that. A checkpoint is decoded once; the catalog is asked at most every
 * `minIntervalMs`.
 */
export class SpeedCheckpointReader {
  readonly #node: ViewNode;
  readonly #catalog: CatalogStore;
  readonly #minIntervalMs: number;
  readonly #store: SpeedStore | undefined;
  #held: { key: string; aggregator: ViewAggregator } | undefined;
  #checkedAt = -Infinity;
  #reading: Promise<ViewAggregator | undefined> | undefined;

  /** With `store`, the states are every shard's checkpoint in it, merged (the measures merge). */
  constructor(node: ViewNode, catalog: CatalogStore, minIntervalMs = 200, store?: SpeedStore) {
    this.#node = node;
    this.#catalog = catalog;
    this.#minIntervalMs = minIntervalMs;
    this.#store = store;
  }

  /** The states of the newest checkpoint of the view's current definition (undefined: none). */
  aggregator(): Promise<ViewAggregator | undefined> {
    if (performance.now() - this.#checkedAt < this.#minIntervalMs)
      return Promise.resolve(this.#held?.aggregator);
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  async #read(): Promise<ViewAggregator | undefined> {
    if (this.#store) return this.#readShards(this.#store);
    const cp = await this.#catalog.speedCheckpoint(this.#node.name);
    this.#checkedAt = performance.now();
    if (!cp || cp.viewHash !== this.#node.hash) {
      this.#held = undefined;
      return undefined;
    }
    const key = `${cp.position}:${cp.savedAt}`;
    if (this.#held?.key !== key) {
      const aggregator = new ViewAggregator(this.#node);
      aggregator.restore(cp.state);
      this.#held = { key, aggregator };
    }
    return this.#held.aggregator;
  }

  /** Every shard of the view in the store, merged; decoded again only when the store changed. */
  async #readShards(store: SpeedStore): Promise<ViewAggregator | undefined> {
    const version = await store.version(this.#node.name);
    this.#checkedAt = performance.now();
    const key = `v${version}`;
    if (this.#held?.key === key) return this.#held.aggregator;
    const shards = (await store.load(this.#node.name)).filter(
      (cp) => cp.viewHash === this.#node.hash,
    );
    if (shards.length === 0) {
      this.#held = undefined;
      return undefined;
    }
    const aggregator = new ViewAggregator(this.#node);
    for (const cp of shards) aggregator.restore(cp.state);
    this.#held = { key, aggregator };
    return aggregator;
  }
}
