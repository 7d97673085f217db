// Answers a lambda view: batch states before the batch watermark, speed states after it, merged and rolled up.
import type { CatalogStore, ObjectStore } from "../backends/contracts/index.js";
import { TributaryError } from "../errors.js";
import { quoteString, sqlType } from "../lake/index.js";
import {
  BUCKET_COLUMN,
  GRAIN_MS,
  VIEW_STATE_LAYER,
  ViewAggregator,
  viewMeasures,
  type BucketStates,
  type Grain,
  type ViewNode,
} from "../views/index.js";

/** A view query, as `GET /v1/views/{view}` takes it. */
export interface ViewQuery {
  readonly from: number;
  readonly to: number;
  readonly grain: Grain;
  /** Dimension name → the value rows must have. */
  readonly where: ReadonlyMap<string, string>;
}

/** The answer: rows with the layer that served each bucket, and the cut. */
export interface ViewAnswer {
  readonly view: string;
  readonly grain: Grain;
  readonly from: string;
  readonly to: string;
  /** Start of the first bucket the batch layer does not cover (null: it covers nothing yet). */
  readonly batch_until: string | null;
  readonly columns: { name: string; type: string }[];
  readonly rows: (string | number | boolean | null)[][];
}

/** What a view query reads. */
export interface ViewSources {
  readonly catalog: CatalogStore;
  readonly lake: ObjectStore;
  /** Runs trusted SQL over lake files (the engine's sandbox, without the user SQL guard). */
  readonly readRows: (sql: string) => Promise<Record<string, unknown>[]>;
  /** The speed layer's buckets of the view (empty when this process does not run it). */
  readonly speedBuckets: () => Iterable<BucketStates>;
  /** Start (epoch ms) of the first bucket the batch layer has not covered (-Infinity: none). */
  readonly batchUntil: () => Promise<number>;
}

/**
 * Answers a view over [from, to): buckets before the batch watermark come from the batch layer's
 * `view_state` partitions, later ones from the speed layer, so no event is counted twice; states
 * are merged and rolled up to the grain, then finalized. Raw data is never scanned.
 */
export async function queryView(
  node: ViewNode,
  q: ViewQuery,
  sources: ViewSources,
): Promise<ViewAnswer> {
  const grainMs = GRAIN_MS[q.grain];
  if (grainMs < node.grainMs || grainMs % node.grainMs !== 0) {
    throw new TributaryError(
      "TRB_HTTP_BAD_REQUEST",
      `grain ${q.grain} is finer than the view's (${node.grain}); use ${node.grain} or coarser.`,
    );
  }
  const dims = node.dimensions.map((d) => d.name);
  for (const k of q.where.keys()) {
    if (!dims.includes(k))
      throw new TributaryError(
        "TRB_HTTP_BAD_REQUEST",
        `\`${k}\` is not a dimension of ${node.name} (${dims.join(", ")}).`,
      );
  }
  const measures = viewMeasures(node);
  const cut = await sources.batchUntil();
  const merged = new ViewAggregator(node);
  const matches = (values: readonly unknown[]): boolean =>
    [...q.where].every(([k, v]) => String(values[dims.indexOf(k)]) === v);

  // Batch: the partitions of the days that hold buckets in [from, min(to, cut)).
  const batchTo = Math.min(q.to, cut);
  if (batchTo > q.from) {
    const files = await sources.catalog.files({ layer: VIEW_STATE_LAYER, name: node.name });
    const wanted = files.filter((f) => {
      const day = Date.parse(`${f.partition.day}T00:00:00Z`);
      // A bucket of a day partition lies within a day and a half of its UTC midnight (zones).
      return day + 2 * 86_400_000 > q.from && day - 86_400_000 < batchTo;
    });
    if (wanted.length > 0) {
      const paths = await Promise.all(wanted.map((f) => sources.lake.localPath(f.path)));
      const rows = await sources.readRows(
        `SELECT epoch_ms(${BUCKET_COLUMN})::DOUBLE AS __bucket_ms, * FROM read_parquet([${paths
          .map(quoteString)
          .join(", ")}], hive_partitioning = true)
         WHERE ${BUCKET_COLUMN} >= make_timestamp(${q.from * 1000}::BIGINT)
           AND ${BUCKET_COLUMN} < make_timestamp(${batchTo * 1000}::BIGINT)`,
      );
      for (const row of rows) {
        const values = dims.map((d) => row[d] ?? null);
        if (!matches(values)) continue;
        merged.mergeStates(
          Number(row.__bucket_ms),
          values,
          measures.map((m) => m.fromPartial(row[m.spec.name])),
          true,
        );
      }
    }
  }
  // Speed: buckets at or after the cut.
  for (const b of sources.speedBuckets()) {
    if (b.bucket < Math.max(q.from, cut) || b.bucket >= q.to || !matches(b.dims)) continue;
    merged.mergeStates(b.bucket, b.dims, b.states);
  }
  const rows = merged.rows({ grainMs });
  const typeOf = (kind: string): string =>
    kind === "count" || kind === "count_distinct" ? "BIGINT" : "DOUBLE";
  return {
    view: node.name,
    grain: q.grain,
    from: new Date(q.from).toISOString(),
    to: new Date(q.to).toISOString(),
    batch_until: Number.isFinite(cut) ? new Date(cut).toISOString() : null,
    columns: [
      { name: BUCKET_COLUMN, type: "TIMESTAMP" },
      ...node.dimensions.map((d) => ({ name: d.name, type: sqlType(d.type) })),
      ...node.measures.map((m) => ({ name: m.name, type: typeOf(m.kind) })),
      { name: "layer", type: "VARCHAR" },
    ],
    rows: rows.map((r) => [
      new Date(r.bucket).toISOString(),
      ...(r.dims as (string | number | boolean | null)[]),
      ...r.values,
      r.bucket + grainMs <= cut ? "batch" : r.bucket >= cut ? "speed" : "mixed",
    ]),
  };
}
