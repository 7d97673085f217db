// Public door of the views stage: the view compiler and the mergeable measures batch, speed and serve share.
export {
  bucketOf,
  bucketSql,
  compileView,
  compileViews,
  filterFunction,
  filterSql,
  GRAIN_MS,
  parseViewMeasure,
} from "./view-node.js";
export type { Grain, ViewField, ViewFilter, ViewMeasure, ViewNode } from "./view-node.js";
export { measureFor, parseMeasure, stateKey } from "./measures.js";
export type {
  Measure,
  MeasureFieldType,
  MeasureKind,
  MeasureSpec,
  MeasureState,
} from "./measures.js";
export {
  DISTINCT_EXACT_MAX,
  DISTINCT_P,
  DISTINCT_REGISTERS,
  DistinctSketch,
  distinctRegisterSql,
} from "./distinct-sketch.js";
export { QUANTILE_EXACT_MAX, QUANTILE_K, QuantileSketch } from "./quantile-sketch.js";
export { ExactSum } from "./exact-sum.js";
export { canonicalText, hashSql, hashValue } from "./hash.js";
export type { HashableValue, HashType } from "./hash.js";
export {
  ViewAggregator,
  finalizeBuckets,
  rollUp,
  sortBuckets,
  viewMeasures,
} from "./aggregator.js";
export type { BucketStates, ViewRow } from "./aggregator.js";
export { BUCKET_COLUMN, VIEW_STATE_LAYER, viewBatchSql } from "./batch-sql.js";
