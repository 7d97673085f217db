// Summarizes the catalog for people: datasets with their schema, file count, rows, bytes and time range.
import type { CatalogStore } from "../backends/contracts/index.js";

/** One dataset in the catalog summary. */
export interface DatasetSummary {
  readonly name: string;
  readonly layer: string;
  readonly kind: string;
  readonly description: string | null;
  readonly schema_version: number;
  readonly columns: readonly { name: string; type: string; description?: string }[];
  readonly partition_columns: readonly string[];
  readonly files: number;
  readonly rows: number;
  readonly bytes: number;
  readonly min_event_time: string | null;
  readonly max_event_time: string | null;
}

/** The catalog as `GET /v1/catalog` and `tributary catalog` show it. */
export async function describeCatalog(
  catalog: CatalogStore,
): Promise<{ snapshot: number; datasets: DatasetSummary[] }> {
  const snapshot = await catalog.latestSnapshot();
  const out: DatasetSummary[] = [];
  for (const ds of await catalog.datasets()) {
    const files = await catalog.files(ds, snapshot);
    let rows = 0;
    let bytes = 0;
    let min = Infinity;
    let max = -Infinity;
    for (const f of files) {
      rows += f.rows;
      bytes += f.bytes;
      if (f.minTime !== null && f.minTime < min) min = f.minTime;
      if (f.maxTime !== null && f.maxTime > max) max = f.maxTime;
    }
    out.push({
      name: `${ds.layer}.${ds.name}`,
      layer: ds.layer,
      kind: ds.kind,
      description: ds.description,
      schema_version: ds.schemaVersion,
      columns: ds.columns,
      partition_columns: ds.partitionColumns,
      files: files.length,
      rows,
      bytes,
      min_event_time: Number.isFinite(min) ? new Date(min).toISOString() : null,
      max_event_time: Number.isFinite(max) ? new Date(max).toISOString() : null,
    });
  }
  return { snapshot, datasets: out };
}
