// The batch watermark of a lambda view: the end of the days whose view_state partitions the batch layer has built.
import type { CatalogStore } from "../backends/contracts/index.js";
import type { Pipeline } from "../config/index.js";
import { VIEW_STATE_LAYER, viewBatchSql, type ViewNode } from "../views/index.js";
import { modelHash } from "./compile.js";
import { addDays, dayStartMs } from "./days.js";

/**
 * Start (epoch ms, in `batch.timezone`) of the first day the batch layer does not cover for a
 * view; -Infinity when it covers none. A day is covered when its view_state partition has a live
 * file built from the view's current definition, fresh or not: a partition that late data made
 * stale still answers for its day (the late events join at the repair), and the speed layer has
 * already evicted those buckets, so the cut must never move back over it. The covered days are
 * the run of such partitions from the first one: a day not covered (never built, or built from
 * an older definition) ends the run.
 */
export async function viewBatchUntil(
  catalog: CatalogStore,
  node: ViewNode,
  pipeline: Pipeline,
): Promise<number> {
  const hash = modelHash(
    {
      layer: VIEW_STATE_LAYER,
      name: node.name,
      sql: viewBatchSql(node, pipeline),
      materialized: "partitioned",
    },
    pipeline.batch.timezone,
  );
  const states = (await catalog.partitions(`${VIEW_STATE_LAYER}.${node.name}`))
    .filter((p) => p.day !== "*")
    .sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  let last: string | undefined;
  for (const p of states) {
    if (p.builtAt === null || p.modelHash !== hash) break;
    last = p.day;
  }
  return last === undefined ? -Infinity : dayStartMs(addDays(last, 1), pipeline.batch.timezone);
}
