// Public door of the land stage: one Lander per stream and dead-letter stream, flushed and stopped together.
import { join } from "node:path";
import type { Logger } from "pino";
import type { CatalogStore, ObjectStore, Stream } from "../backends/contracts/index.js";
import type { Pipeline } from "../config/index.js";
import { ParquetWriter, dlqDataset, rawDataset, type DatasetDef } from "../lake/index.js";
import { Lander } from "./lander.js";

export { Lander, LAND_CONSUMER } from "./lander.js";
export type { LanderOptions } from "./lander.js";

/** Options of `LandStage.start`. */
export interface LandStageOptions {
  /** Start consuming at once (default true); else `run()` starts the landers. */
  readonly consume?: boolean;
  /**
   * Stream partitions to land from the start (default: every partition of the stream backend).
   * Where processes share the partitions (`PartitionLeases`), start with none and add each held
   * one with `addPartition`.
   */
  readonly partitions?: readonly number[];
  /** See `LanderOptions.orphanMinAgeMs`. */
  readonly orphanMinAgeMs?: number;
}

/** The land stage of a process: lands every stream of the pipeline into raw.* and dlq.*. */
export class LandStage {
  /** Landers by partition: one per stream and dead-letter stream. */
  readonly #landers = new Map<number, Lander[]>();
  readonly #writer: ParquetWriter;
  readonly #pipeline: Pipeline;
  readonly #backends: { stream: Stream; catalog: CatalogStore; lake: ObjectStore };
  readonly #log: Logger;
  readonly #orphanMinAgeMs: number;
  #running = false;
  #stopped = false;

  private constructor(
    writer: ParquetWriter,
    pipeline: Pipeline,
    backends: { stream: Stream; catalog: CatalogStore; lake: ObjectStore },
    log: Logger,
    orphanMinAgeMs: number,
  ) {
    this.#writer = writer;
    this.#pipeline = pipeline;
    this.#backends = backends;
    this.#log = log;
    this.#orphanMinAgeMs = orphanMinAgeMs;
  }

  /**
   * Registers the datasets and starts a Lander per stream and dead-letter stream (and partition).
   * With `{ consume: false }` the landers only prepare; `run()` starts them (a process starts
   * landing its backlog after it is ready, so catching up does not delay readiness).
   * @example const land = await LandStage.start(pipeline, backends, log); await land.flush();
   */
  static async start(
    pipeline: Pipeline,
    backends: { stream: Stream; catalog: CatalogStore; lake: ObjectStore },
    log: Logger,
    options: LandStageOptions = {},
  ): Promise<LandStage> {
    const writer = await ParquetWriter.create();
    const stage = new LandStage(writer, pipeline, backends, log, options.orphanMinAgeMs ?? 0);
    for (const [, dataset] of stage.#pairs())
      await backends.catalog.ensureDataset(dataset.ref, dataset);
    const partitions =
      options.partitions ??
      Array.from({ length: backends.stream.capabilities.partitions }, (_, k) => k);
    for (const k of partitions) await stage.#prepare(k);
    if (options.consume !== false) stage.run();
    return stage;
  }

  /** The partitions this stage lands, ascending. */
  get partitions(): number[] {
    return [...this.#landers.keys()].sort((a, b) => a - b);
  }

  /** Starts every lander that is only prepared (and those added later). */
  run(): void {
    this.#running = true;
    for (const l of [...this.#landers.values()].flat()) l.run();
  }

  /** Starts landing a partition (from its position in the catalog). Idempotent. */
  async addPartition(partition: number): Promise<void> {
    if (this.#stopped || this.#landers.has(partition)) return;
    await this.#prepare(partition);
    if (this.#running) for (const l of this.#landers.get(partition) ?? []) l.run();
  }

  /**
   * Stops landing a partition: lands what is buffered (refused by the catalog, and dropped, if
   * another process has committed from this position meanwhile) and stops its landers. What was
   * not read yet is read by the partition's next holder.
   */
  async removePartition(partition: number): Promise<void> {
    const landers = this.#landers.get(partition);
    if (!landers) return;
    this.#landers.delete(partition);
    await Promise.all(landers.map((l) => l.stop()));
  }

  /** Resolves once everything appended to this stage's partitions before the call is committed. */
  async flush(): Promise<void> {
    await Promise.all([...this.#landers.values()].flat().map((l) => l.flush()));
  }

  /** Lands what is buffered and stops every lander. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const landers = [...this.#landers.values()].flat();
    this.#landers.clear();
    await Promise.all(landers.map((l) => l.stop()));
    this.#writer.close();
  }

  /** Each stream and dead-letter stream with the dataset it lands in. */
  #pairs(): [string, DatasetDef][] {
    return [...this.#pipeline.streams.values()].flatMap((plan): [string, DatasetDef][] => [
      [plan.name, rawDataset(plan)],
      [`${plan.name}.dlq`, dlqDataset(plan)],
    ]);
  }

  async #prepare(partition: number): Promise<void> {
    const pipeline = this.#pipeline;
    const landers: Lander[] = [];
    for (const [streamName, dataset] of this.#pairs()) {
      const lander = new Lander({
        ...this.#backends,
        writer: this.#writer,
        streamName,
        dataset,
        partition,
        orphanMinAgeMs: this.#orphanMinAgeMs,
        flushMaxBytes: pipeline.lake.flushMaxBytes,
        flushMaxAgeMs: pipeline.lake.flushMaxAgeMs,
        compression: pipeline.lake.compression,
        // A staging folder per partition: preparing one clears it, which must not touch another's.
        stagingDir: join(
          pipeline.lakeDir,
          "_staging",
          `${dataset.ref.layer}.${dataset.ref.name}${partition === 0 ? "" : `.p${partition}`}`,
        ),
        log: this.#log,
      });
      await lander.prepare();
      landers.push(lander);
    }
    this.#landers.set(partition, landers);
  }
}
