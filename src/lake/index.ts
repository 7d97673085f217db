// Public door of the lake: dataset layout of streams and the Parquet writer.
export { rawDataset, dlqDataset, datasetPrefix, sqlType, EVENT_PARTITIONS } from "./datasets.js";
export type { DatasetDef } from "./datasets.js";
export { ParquetWriter, quoteString } from "./parquet-writer.js";
export type { WrittenFile } from "./parquet-writer.js";
export { datasetViewSql, partitionColumnType, quoteIdent } from "./views.js";
export type { ViewFile } from "./views.js";
export { mapLimit } from "./map-limit.js";
