// Runs the batch layer on the pipeline's cron schedule inside `tributary up`.
import { Cron } from "croner";
import type { Logger } from "pino";
import { isTributaryError } from "../errors.js";
import type { BatchEngine } from "./engine.js";

/**
 * Triggers a scheduled run at every tick of `schedule` (croner syntax: 5 fields, or 6 with seconds
 * first). A tick that finds a run in progress is skipped; errors are logged, never thrown, so a
 * broken model does not stop the process.
 */
export class BatchScheduler {
  readonly #cron: Cron;
  #tick: Promise<void> | undefined;

  constructor(engine: BatchEngine, schedule: string, timezone: string, log: Logger) {
    this.#cron = new Cron(schedule, { timezone, protect: true }, () => {
      if (this.#tick) return;
      this.#tick = engine
        .runScheduled()
        .then((summary) => {
          if (summary) {
            const { run, tasks } = summary;
            const failed = tasks.filter((t) => t.status !== "succeeded").length;
            const fields = { runId: run.id, days: run.days.length, tasks: tasks.length, failed };
            if (failed > 0) log.warn(fields, "scheduled batch run finished with failures");
            else log.info(fields, "scheduled batch run finished");
          }
        })
        .catch((e: unknown) => {
          if (isTributaryError(e, "TRB_BATCH_BUSY")) return;
          log.error({ err: e }, "scheduled batch run failed");
        })
        .finally(() => {
          this.#tick = undefined;
        });
    });
  }

  /** When the next tick is due. */
  get next(): Date | null {
    return this.#cron.nextRun();
  }

  /** Stops ticking and waits for a tick in progress. */
  async stop(): Promise<void> {
    this.#cron.stop();
    await this.#tick;
  }
}
