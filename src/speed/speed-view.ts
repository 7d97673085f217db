// The speed layer of one view: consumes its stream, folds events into event-time windows, checkpoints exactly once.
import type { Logger } from "pino";
import type {
  CatalogStore,
  SpeedStore,
  StoredRecord,
  Stream,
} from "../backends/contracts/index.js";
import { isTributaryError } from "../errors.js";
import { metrics } from "../telemetry.js";
import { ViewAggregator, type ViewNode } from "../views/index.js";

/** What a SpeedView needs. */
export interface SpeedViewOptions {
  readonly node: ViewNode;
  readonly stream: Stream;
  readonly catalog: CatalogStore;
  readonly log: Logger;
  /** Checkpoint at most this often while events arrive (default 1 s). */
  readonly checkpointMs?: number;
  /** Records read per step (default 5,000). */
  readonly readBatch?: number;
  /**
   * Start (epoch ms) of the first bucket the batch layer has not covered: older buckets are evicted
   * (serve answers them from the batch layer). Default: nothing is covered.
   */
  readonly batchUntil?: () => Promise<number>;
  /**
   * Where checkpoints go: a SpeedStore shard (distributed: PostgreSQL or Redis), saved with
   * compare-and-set on the position, so a stale process cannot overwrite a newer checkpoint.
   * Default: the catalog's one checkpoint per view.
   */
  readonly store?: { readonly speed: SpeedStore; readonly shard: string };
  /**
   * The stream partition this speed layer consumes (default 0; with one partition, all of the
   * stream). Each partition needs its own `store` shard: the shards are merged when served.
   */
  readonly partition?: number;
}

/** The consumer name of a view's speed layer in its stream (retention waits for it). */
export function speedConsumer(view: string): string {
  return `speed.${view}`;
}

/**
 * One view's speed layer. Events are assigned to buckets by event time; the watermark is the newest
 * event time minus the view's allowed lateness, and an event older than the watermark is counted
 * as late and left to the batch layer (its window may already be evicted or served). The window
 * states and the stream position they cover are checkpointed together in the catalog, so after a
 * crash the restart restores the states and reads on from that position: every event is applied
 * exactly once.
 */
export class SpeedView {
  readonly #o: SpeedViewOptions;
  #aggregator: ViewAggregator;
  #position = 1;
  #maxTime: number | null = null;
  #late = 0;
  /** The position of the shard's checkpoint in the store (compare-and-set), null when none. */
  #saved: number | null = null;
  #dirty = false;
  #lastCheckpoint = 0;
  #stopping = false;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #waiters: { target: number; resolve: () => void }[] = [];

  /** Read options that select this speed layer's partition (none when the stream has one). */
  readonly #select: { partition?: number };
  readonly #consumer: string;

  constructor(options: SpeedViewOptions) {
    this.#o = options;
    this.#aggregator = new ViewAggregator(options.node);
    const partition = options.partition ?? 0;
    const partitioned = options.stream.capabilities.partitions > 1;
    this.#select = partitioned ? { partition } : {};
    this.#consumer = partitioned
      ? `${speedConsumer(options.node.name)}.p${partition}`
      : speedConsumer(options.node.name);
  }

  /** The window states (replaced when another process took this view's shard over). */
  get aggregator(): ViewAggregator {
    return this.#aggregator;
  }

  /** Next stream position to read (everything before it is applied). */
  get position(): number {
    return this.#position;
  }

  /** The watermark: newest event time minus the allowed lateness (null before any event). */
  get watermark(): number | null {
    return this.#maxTime === null ? null : this.#maxTime - this.#o.node.allowedLatenessMs;
  }

  /** Events that arrived behind the watermark. */
  get late(): number {
    return this.#late;
  }

  /** Restores the last checkpoint (if it is of this definition of the view) and registers the consumer. */
  async prepare(): Promise<void> {
    const o = this.#o;
    await o.stream.register(o.node.stream, this.#consumer);
    const cp = o.store
      ? await o.store.speed.loadShard(o.node.name, o.store.shard)
      : await o.catalog.speedCheckpoint(o.node.name);
    this.#saved = o.store ? (cp?.position ?? null) : null;
    if (cp && cp.viewHash === o.node.hash) {
      this.aggregator.restore(cp.state);
      this.#position = cp.position;
      this.#maxTime = cp.maxTime;
      this.#late = cp.late;
    } else if (cp) {
      // The view changed: its old states mean something else. Rebuild from what the stream keeps.
      o.log.warn({ view: o.node.name }, "view definition changed; the speed layer starts over");
    }
  }

  /** Starts consuming in the background. */
  run(): void {
    this.#loop ??= this.#consume();
  }

  /** Reads and applies one step (at most `readBatch` records); returns how many were read. */
  async step(waitMs = 0): Promise<number> {
    const o = this.#o;
    const records = await o.stream.read(o.node.stream, this.#position, {
      ...this.#select,
      max: o.readBatch ?? 5_000,
      waitMs,
      signal: this.#abort.signal,
    });
    if (records.length === 0) return 0;
    this.#apply(records);
    return records.length;
  }

  /** Applies records in order: window them, or count them late. */
  #apply(records: readonly StoredRecord[]): void {
    const node = this.#o.node;
    let late = 0;
    let added = 0;
    for (const r of records) {
      const data = JSON.parse(r.data) as Record<string, unknown>;
      const time =
        node.timeColumn === "_event_time" ? r.time : Date.parse(String(data[node.timeColumn]));
      this.#position = r.seq + 1;
      if (!Number.isFinite(time)) continue;
      const watermark = this.watermark;
      if (watermark !== null && time < watermark) {
        late++;
        continue;
      }
      if (this.#maxTime === null || time > this.#maxTime) this.#maxTime = time;
      if (this.aggregator.add(data, time)) added++;
    }
    this.#late += late;
    this.#dirty = true;
    metrics.speedReceived.inc({ view: node.name }, records.length);
    metrics.speedEmitted.inc({ view: node.name }, added);
    if (late > 0) metrics.speedLate.inc({ view: node.name }, late);
    metrics.speedBuckets.set({ view: node.name }, this.aggregator.size);
  }

  /**
   * Evicts buckets the batch layer covers, then writes the states with the position they cover;
   * the stream learns the position afterwards (retention only).
   */
  async checkpoint(): Promise<void> {
    const o = this.#o;
    if (o.batchUntil) this.aggregator.evictBefore(await o.batchUntil());
    const checkpoint = {
      viewHash: o.node.hash,
      position: this.#position,
      maxTime: this.#maxTime,
      late: this.#late,
      state: this.aggregator.serialize(),
    };
    if (o.store) {
      try {
        await o.store.speed.save(o.node.name, o.store.shard, this.#saved, checkpoint);
      } catch (e) {
        if (!isTributaryError(e, "TRB_CATALOG_CONFLICT")) throw e;
        // Another process saved this shard since: it took over. Start again from its checkpoint
        // (what this process applied since is applied there too, or will be).
        o.log.warn(
          { view: o.node.name, shard: o.store.shard },
          "speed shard taken over; reloading",
        );
        this.#aggregator = new ViewAggregator(o.node);
        this.#dirty = false;
        this.#position = 1;
        this.#maxTime = null;
        this.#late = 0;
        await this.prepare();
        return;
      }
      this.#saved = checkpoint.position;
    } else await o.catalog.saveSpeedCheckpoint({ view: o.node.name, ...checkpoint });
    this.#dirty = false;
    this.#lastCheckpoint = Date.now();
    await o.stream.commit(o.node.stream, this.#consumer, this.#position);
  }

  /** Resolves once every record appended before the call is applied (and checkpointed). */
  async catchUp(): Promise<void> {
    const { stream, node } = this.#o;
    const target =
      this.#select.partition === undefined
        ? await stream.end(node.stream)
        : await stream.end(node.stream, this.#select.partition);
    if (this.#position >= target) return;
    await new Promise<void>((resolve) => {
      this.#waiters.push({ target, resolve });
      this.#abort.abort();
    });
  }

  async #consume(): Promise<void> {
    const o = this.#o;
    const every = o.checkpointMs ?? 1_000;
    let failures = 0;
    while (!this.#stopping) {
      try {
        if (this.#abort.signal.aborted) this.#abort = new AbortController();
        const n = await this.step(this.#waiters.length > 0 ? 0 : 500);
        const due = Date.now() - this.#lastCheckpoint >= every;
        const waiting = this.#waiters.some((w) => this.#position >= w.target);
        if (this.#dirty && (due || waiting || n === 0)) await this.checkpoint();
        for (const w of this.#waiters.filter((x) => this.#position >= x.target)) w.resolve();
        this.#waiters = this.#waiters.filter((x) => this.#position < x.target);
        failures = 0;
      } catch (e) {
        failures++;
        metrics.speedErrors.inc({ view: o.node.name });
        o.log.error({ err: e, view: o.node.name }, "speed layer step failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(30_000, 100 * 2 ** failures)));
      }
    }
  }

  /** Stops consuming after a final checkpoint. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    await this.#loop;
    if (this.#dirty) await this.checkpoint();
  }
}
