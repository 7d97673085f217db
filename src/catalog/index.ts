// Public door of the catalog stage: summaries of datasets, files and snapshots.
export { describeCatalog } from "./describe.js";
export type { DatasetSummary } from "./describe.js";
