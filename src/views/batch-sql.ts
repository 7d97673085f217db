// The batch layer's half of a view: one SELECT over raw.<stream> giving partial states per day, bucket and dimensions.
import type { Pipeline } from "../config/index.js";
import { measureFor, type MeasureFieldType } from "./measures.js";
import { bucketSql, filterSql, type ViewNode } from "./view-node.js";

/** Internal layer of the views' partial states (reserved: no model layer may take the name). */
export const VIEW_STATE_LAYER = "view_state";

/** Column of a view state dataset holding the bucket start. */
export const BUCKET_COLUMN = "bucket";

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * The SELECT the batch layer runs for a view: per event day (`day`, the partition), bucket and
 * dimension values, one partial aggregate per measure (`Measure.partialSql`), which `fromPartial`
 * turns into the same state the speed layer builds from the same events.
 * @example viewBatchSql(node, pipeline) // SELECT event_day(...) AS day, date_trunc('minute', ...) ...
 */
export function viewBatchSql(node: ViewNode, pipeline: Pipeline): string {
  const plan = pipeline.streams.get(node.stream);
  if (!plan) throw new Error(`view ${node.name}: unknown stream ${node.stream}`);
  const typeOf = (field: string): MeasureFieldType =>
    plan.fields.find((f) => f.name === field)!.type as MeasureFieldType;
  const time = ident(node.timeColumn);
  const select = [
    `event_day(${time}) AS day`,
    `${bucketSql(time, node.grain)} AS ${BUCKET_COLUMN}`,
    ...node.dimensions.map((d) => ident(d.name)),
    ...node.measures.map((m) => {
      const measure = measureFor({ name: m.name, kind: m.kind, field: m.field, q: m.q });
      const partial =
        m.field === undefined
          ? measure.partialSql(undefined, undefined)
          : measure.partialSql(ident(m.field), typeOf(m.field));
      return `${partial} AS ${ident(m.name)}`;
    }),
  ];
  return [
    `SELECT ${select.join(",\n  ")}`,
    `FROM raw.${ident(node.stream)}`,
    `WHERE ${time} IS NOT NULL AND ${filterSql(node.filters)}`,
    "GROUP BY ALL",
  ].join("\n");
}
