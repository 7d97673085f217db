// Answers a lambda view: batch states before the batch watermark, speed states after it, merged and rolled up.
import type { CatalogStore, ObjectStore } from "../backends/contracts/index.js";
import { TributaryError } from "../errors.js";
import { quoteString } from "../lake/index.js";
import {
  BUCKET_COLUMN,
  GRAIN_MS,
  VIEW_STATE_LAYER,
  ViewAggregator,
  finalizeBuckets,
  rollUp,
  sortBuckets,
  viewMeasures,
  type BucketStates,
  type Grain,
  type ViewNode,
  type ViewRow,
} from "../views/index.js";
import { viewColumns } from "./sql-views.js";

/** A view query, as `GET /v1/views/{view}` takes it. */
export interface ViewQuery {
  readonly from: number;
  readonly to: number;
  readonly grain: Grain;
  /** Dimension name → the value rows must have. */
  readonly where: ReadonlyMap<string, string>;
  /**
   * The dimensions to keep as columns (default: all). Rows of the others' values are merged into
   * one per bucket and kept values (the measures merge exactly).
   */
  readonly dimensions?: readonly string[];
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
  readonly speedBuckets: () => Iterable<BucketStates> | Promise<Iterable<BucketStates>>;
  /** Start (epoch ms) of the first bucket the batch layer has not covered (-Infinity: none). */
  readonly batchUntil: () => Promise<number>;
  /** Decoded view_state files kept between queries (none: every query decodes its files). */
  readonly cache?: ViewStateCache;
}

/** A view_state file decoded: its buckets' states, sorted by bucket then dimension values. */
interface DecodedFile {
  readonly buckets: readonly BucketStates[];
  /** First and last bucket start (the file's span; Infinity and -Infinity when empty). */
  readonly first: number;
  readonly last: number;
  /** The buckets finalized at the view's grain, as answer rows (filled by the first query). */
  answer?: AnswerRow[];
}

type AnswerRow = (string | number | boolean | null)[];

/**
 * Decoded view_state files by lake path, least recently used first out. A committed file never
 * changes (a rebuilt partition is a new file), so an entry never goes stale; a file no longer
 * live is simply not asked for again and ages out. Bounded by the buckets held.
 */
export class ViewStateCache {
  readonly #files = new Map<string, DecodedFile>();
  readonly #maxBuckets: number;
  #buckets = 0;

  constructor(maxBuckets = 250_000) {
    this.#maxBuckets = maxBuckets;
  }

  /** Buckets held, over every file. */
  get buckets(): number {
    return this.#buckets;
  }

  get(path: string): DecodedFile | undefined {
    const file = this.#files.get(path);
    if (file) {
      this.#files.delete(path);
      this.#files.set(path, file);
    }
    return file;
  }

  set(path: string, file: DecodedFile): void {
    const held = this.#files.get(path);
    if (held) this.#buckets -= held.buckets.length;
    this.#files.delete(path);
    this.#files.set(path, file);
    this.#buckets += file.buckets.length;
    for (const [oldest, f] of this.#files) {
      if (this.#buckets <= this.#maxBuckets || oldest === path) break;
      this.#files.delete(oldest);
      this.#buckets -= f.buckets.length;
    }
  }
}

/**
 * Answers a view over [from, to): buckets before the batch watermark come from the batch layer's
 * `view_state` partitions, later ones from the speed layer, so no event is counted twice; states
 * are merged and rolled up to the grain, then finalized. Raw data is never scanned. The rows may
 * be shared with later answers (the cache's): do not change them.
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
  for (const k of q.dimensions ?? [])
    if (!dims.includes(k))
      throw new TributaryError(
        "TRB_HTTP_BAD_REQUEST",
        `\`${k}\` is not a dimension of ${node.name} (${dims.join(", ")}).`,
      );
  // Kept dimensions in the view's order, so the answer's columns stay in declared order.
  const keep =
    q.dimensions === undefined
      ? undefined
      : dims.flatMap((d, i) => (q.dimensions!.includes(d) ? [i] : []));
  const where = [...q.where].map(([k, v]) => [dims.indexOf(k), v] as const);
  const matches = (values: readonly unknown[]): boolean =>
    where.every(([i, v]) => String(values[i]) === v);
  const measures = viewMeasures(node);
  const cut = await sources.batchUntil();
  const layerOf = (bucket: number): string =>
    bucket + grainMs <= cut ? "batch" : bucket >= cut ? "speed" : "mixed";

  // Batch: the partitions of the days that hold buckets in [from, min(to, cut)).
  const batchTo = Math.min(q.to, cut);
  const decoded = batchTo > q.from ? await batchFiles(node, q.from, batchTo, sources) : [];
  const inBatch = (b: BucketStates): boolean =>
    b.bucket >= q.from && b.bucket < batchTo && matches(b.dims);
  // Speed: buckets at or after the cut.
  const speed: BucketStates[] = [];
  for (const b of await sources.speedBuckets()) {
    if (b.bucket < Math.max(q.from, cut) || b.bucket >= q.to || !matches(b.dims)) continue;
    speed.push(b);
  }
  const toAnswer = (r: ViewRow): AnswerRow => [
    new Date(r.bucket).toISOString(),
    ...(r.dims as (string | number | boolean | null)[]),
    ...r.values,
    layerOf(r.bucket),
  ];

  let rows: AnswerRow[] = [];
  if (keep !== undefined) {
    const project = (b: BucketStates): BucketStates => ({
      ...b,
      dims: keep.map((i) => b.dims[i]),
    });
    const picked: BucketStates[] = [];
    for (const file of decoded)
      for (const b of file.buckets) if (inBatch(b)) picked.push(project(b));
    for (const b of speed) picked.push(project(b));
    rows = finalizeBuckets(measures, rollUp(measures, picked, { grainMs })).map(toAnswer);
  } else if (grainMs === node.grainMs) {
    // The view's own grain: a file's buckets are final as stored, unless another file holds some
    // of the same buckets (a bucket split across two day partitions): those files are merged.
    for (const group of overlapping(decoded)) {
      if (group.length === 1) {
        const file = group[0]!;
        file.answer ??= finalizeBuckets(measures, file.buckets).map(toAnswer);
        const answer = file.answer;
        for (let i = 0; i < answer.length; i++) {
          const b = file.buckets[i]!;
          if (!inBatch(b)) continue;
          const layer = layerOf(b.bucket);
          // Cached rows say "batch"; a bucket the cut splits (zones) is "mixed".
          rows.push(layer === "batch" ? answer[i]! : [...answer[i]!.slice(0, -1), layer]);
        }
      } else {
        const merged = new ViewAggregator(node);
        for (const file of group)
          for (const b of file.buckets)
            if (inBatch(b)) merged.mergeStates(b.bucket, b.dims, b.states);
        for (const r of merged.rows()) rows.push(toAnswer(r));
      }
    }
    for (const r of finalizeBuckets(measures, speed)) rows.push(toAnswer(r));
  } else {
    const picked: BucketStates[] = [];
    for (const file of decoded) for (const b of file.buckets) if (inBatch(b)) picked.push(b);
    picked.push(...speed);
    rows = finalizeBuckets(measures, rollUp(measures, picked, { grainMs })).map(toAnswer);
  }
  return {
    view: node.name,
    grain: q.grain,
    from: new Date(q.from).toISOString(),
    to: new Date(q.to).toISOString(),
    batch_until: Number.isFinite(cut) ? new Date(cut).toISOString() : null,
    columns:
      keep === undefined
        ? viewColumns(node)
        : viewColumns(node).filter((c) => !dims.includes(c.name) || q.dimensions!.includes(c.name)),
    rows,
  };
}

/** The decoded view_state files holding buckets in [from, to), in the order of their spans. */
async function batchFiles(
  node: ViewNode,
  from: number,
  to: number,
  sources: ViewSources,
): Promise<DecodedFile[]> {
  const files = await sources.catalog.files({ layer: VIEW_STATE_LAYER, name: node.name });
  const wanted = files.filter((f) => {
    const day = Date.parse(`${f.partition.day}T00:00:00Z`);
    // A bucket of a day partition lies within a day and a half of its UTC midnight (zones).
    return day + 2 * 86_400_000 > from && day - 86_400_000 < to;
  });
  const cache = sources.cache;
  const out = new Map<string, DecodedFile>();
  for (const f of wanted) {
    const held = cache?.get(f.path);
    if (held) out.set(f.path, held);
  }
  const missing = wanted.filter((f) => !out.has(f.path));
  if (missing.length > 0) {
    const local = new Map(
      await Promise.all(
        missing.map(async (f) => [await sources.lake.localPath(f.path), f.path] as const),
      ),
    );
    const measures = viewMeasures(node);
    const dims = node.dimensions.map((d) => d.name);
    const rows = await sources.readRows(
      `SELECT filename AS __file, epoch_ms(${BUCKET_COLUMN})::DOUBLE AS __bucket_ms, * FROM read_parquet([${[
        ...local.keys(),
      ]
        .map(quoteString)
        .join(", ")}], hive_partitioning = true, filename = true)`,
    );
    const byFile = new Map<string, BucketStates[]>([...local.values()].map((p) => [p, []]));
    for (const row of rows) {
      const path = local.get(String(row.__file));
      if (path === undefined)
        throw new Error(
          `view ${node.name}: DuckDB named a file it was not given: ${String(row.__file)}`,
        );
      byFile.get(path)!.push({
        bucket: Number(row.__bucket_ms),
        dims: dims.map((d) => row[d] ?? null),
        states: measures.map((m) => m.fromPartial(row[m.spec.name])),
      });
    }
    for (const [path, buckets] of byFile) {
      const sorted = sortBuckets(buckets);
      const file: DecodedFile = {
        buckets: sorted,
        first: sorted[0]?.bucket ?? Infinity,
        last: sorted[sorted.length - 1]?.bucket ?? -Infinity,
      };
      cache?.set(path, file);
      out.set(path, file);
    }
  }
  return [...out.values()].filter((f) => f.buckets.length > 0).sort((a, b) => a.first - b.first);
}

/** Files (sorted by `first`) in groups whose spans overlap: a bucket is only ever in one group. */
function overlapping(files: readonly DecodedFile[]): DecodedFile[][] {
  const groups: DecodedFile[][] = [];
  let end = -Infinity;
  for (const f of files) {
    if (groups.length > 0 && f.first <= end) groups[groups.length - 1]!.push(f);
    else groups.push([f]);
    end = Math.max(end, f.last);
  }
  return groups;
}
