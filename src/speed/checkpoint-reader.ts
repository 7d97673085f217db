// The speed layer's states as another process sees them: its last checkpoint in the catalog.
import type { CatalogStore } from "../backends/contracts/index.js";
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
  #held: { key: string; aggregator: ViewAggregator } | undefined;
  #checkedAt = -Infinity;
  #reading: Promise<ViewAggregator | undefined> | undefined;

  constructor(node: ViewNode, catalog: CatalogStore, minIntervalMs = 200) {
    this.#node = node;
    this.#catalog = catalog;
    this.#minIntervalMs = minIntervalMs;
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
}
