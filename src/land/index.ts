// Public door of the land stage: one Lander per stream and dead-letter stream, flushed and stopped together.
import { join } from "node:path";
import type { Logger } from "pino";
import type { CatalogStore, ObjectStore, Stream } from "../backends/contracts/index.js";
import type { Pipeline } from "../config/index.js";
import { ParquetWriter, dlqDataset, rawDataset, type DatasetDef } from "../lake/index.js";
import { Lander } from "./lander.js";

export { Lander, LAND_CONSUMER } from "./lander.js";
export type { LanderOptions } from "./lander.js";

/** The land stage of a process: lands every stream of the pipeline into raw.* and dlq.*. */
export class LandStage {
  readonly #landers: Lander[] = [];
  readonly #writer: ParquetWriter;

  private constructor(writer: ParquetWriter) {
    this.#writer = writer;
  }

  /**
   * Registers the datasets and starts a Lander per stream and dead-letter stream. With
   * `{ consume: false }` the landers only prepare; `run()` starts them (a process starts landing
   * its backlog after it is ready, so catching up does not delay readiness).
   * @example const land = await LandStage.start(pipeline, backends, log); await land.flush();
   */
  static async start(
    pipeline: Pipeline,
    backends: { stream: Stream; catalog: CatalogStore; lake: ObjectStore },
    log: Logger,
    options: { consume?: boolean } = {},
  ): Promise<LandStage> {
    const writer = await ParquetWriter.create();
    const stage = new LandStage(writer);
    for (const plan of pipeline.streams.values()) {
      const pairs: [string, DatasetDef][] = [
        [plan.name, rawDataset(plan)],
        [`${plan.name}.dlq`, dlqDataset(plan)],
      ];
      for (const [streamName, dataset] of pairs) {
        await backends.catalog.ensureDataset(dataset.ref, dataset);
        const lander = new Lander({
          ...backends,
          writer,
          streamName,
          dataset,
          flushMaxBytes: pipeline.lake.flushMaxBytes,
          flushMaxAgeMs: pipeline.lake.flushMaxAgeMs,
          compression: pipeline.lake.compression,
          stagingDir: join(
            pipeline.lakeDir,
            "_staging",
            `${dataset.ref.layer}.${dataset.ref.name}`,
          ),
          log,
        });
        await lander.prepare();
        if (options.consume !== false) lander.run();
        stage.#landers.push(lander);
      }
    }
    return stage;
  }

  /** Starts every lander that is only prepared. */
  run(): void {
    for (const l of this.#landers) l.run();
  }

  /** Resolves once everything appended to any stream before the call is committed. */
  async flush(): Promise<void> {
    await Promise.all(this.#landers.map((l) => l.flush()));
  }

  /** Lands what is buffered and stops every lander. */
  async stop(): Promise<void> {
    await Promise.all(this.#landers.map((l) => l.stop()));
    this.#writer.close();
  }
}
