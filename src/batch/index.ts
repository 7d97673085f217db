// Public door of the batch layer: SQL models per day partition, runs, schedule, HTTP routes.
export { BatchEngine, compileOffline, planTasks } from "./engine.js";
export { checkPartitions, readCatalogView } from "./freshness.js";
export type {
  BatchEngineOptions,
  RunProgress,
  RunRequest,
  RunSummary,
  RunTrigger,
} from "./engine.js";
export { BatchScheduler } from "./scheduler.js";
export { registerBatchRoutes, planJson, runJson, summaryJson, taskJson } from "./routes.js";
export { acquireBatchLock } from "./lock.js";
export { compilePlan, formatPlan, engineSetupSql, modelHash } from "./compile.js";
export { loadModelSpecs, modelPropertiesSchema } from "./model-spec.js";
export { addDays, dayRange, dayOf, dayStartMs, parseDay } from "./days.js";
export { viewBatchUntil } from "./view-watermark.js";
export { WHOLE_TABLE } from "./plan.js";
export type { PartitionCheck } from "./freshness.js";
export type {
  BatchPlan,
  CompiledModel,
  DataTest,
  Materialization,
  ModelSpec,
  ResolvedModel,
  SeedTable,
} from "./plan.js";
